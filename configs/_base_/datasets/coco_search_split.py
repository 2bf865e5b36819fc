# COCO with the DetNAS search split (recipe 4): 5,000 images carved out of
# the training set score the search; the rest trains the supernet. Make the
# two files with
#   python tools/dataset_converters/split_search_set.py \
#       data/coco/annotations/instances_train2017.json --num 5000 --seed 0 \
#       --out-dir data/coco/annotations
supernet_train_ann = 'annotations/instances_train2017_supernet_train.json'
search_val_ann = 'annotations/instances_train2017_search_val.json'
search_val_ann_file = \
    'data/coco/annotations/instances_train2017_search_val.json'
