"""Dataset converters: the data sets the quickstart and the DetNAS
protocol need, written in the layouts mmdetnas and mmdet read.

- :mod:`.fashion_mnist`: Fashion-MNIST in the ImageNet layout (supernet
  pre-training on classification);
- :mod:`.neon_trees`: the NEON tree-crown detection set (COCO and VOC);
- :mod:`.search_split`: the DetNAS ``supernet_train`` / ``search_val`` split
  of a training set.

Each has a command line in ``tools/dataset_converters/``.
"""
