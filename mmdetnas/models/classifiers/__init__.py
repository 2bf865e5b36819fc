from .image_classifier import ImageClassifier, LinearClsHead

__all__ = ['ImageClassifier', 'LinearClsHead']
