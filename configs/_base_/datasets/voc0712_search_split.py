# VOC 07+12 with the DetNAS search split: 5,000 images carved out of
# trainval 07+12 (here 2,500 from each list) score the search; the rest
# trains the supernet. Make the lists with
#   python tools/dataset_converters/split_search_set.py \
#       data/VOCdevkit/VOC2007/ImageSets/Main/trainval.txt --num 2500 \
#       --seed 0 --out-dir data/VOCdevkit/VOC2007/ImageSets/Main
# (and the same for VOC2012).
voc07_supernet_train = 'VOC2007/ImageSets/Main/trainval_supernet_train.txt'
voc12_supernet_train = 'VOC2012/ImageSets/Main/trainval_supernet_train.txt'
voc07_search_val = 'VOC2007/ImageSets/Main/trainval_search_val.txt'
voc12_search_val = 'VOC2012/ImageSets/Main/trainval_search_val.txt'
