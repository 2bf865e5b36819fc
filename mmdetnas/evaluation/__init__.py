from .metrics import Accuracy

__all__ = ['Accuracy']
