_base_ = './detnas_supernet_shufflenetv2-300m_8xb128_in1k.py'
search_space = '1.3G'
model = dict(backbone=dict(search_space=search_space))
