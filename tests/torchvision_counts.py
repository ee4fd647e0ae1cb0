"""What torchvision 0.29 documents for its convolutional classifiers (the DEFAULT weights' meta).

name -> (num_params, _ops in GMACs, the crop size its default weights are evaluated at).
tests/test_torchvision.py checks this table against torchvision itself when torchvision is installed;
specc's torch-free static checks compare against it."""
DOCUMENTED = {
    "alexnet": (61_100_840, 0.714, 224),  # AlexNet_Weights.IMAGENET1K_V1
    "vgg11": (132_863_336, 7.609, 224),  # VGG11_Weights.IMAGENET1K_V1
    "vgg11_bn": (132_868_840, 7.609, 224),  # VGG11_BN_Weights.IMAGENET1K_V1
    "vgg13": (133_047_848, 11.308, 224),  # VGG13_Weights.IMAGENET1K_V1
    "vgg13_bn": (133_053_736, 11.308, 224),  # VGG13_BN_Weights.IMAGENET1K_V1
    "vgg16": (138_357_544, 15.47, 224),  # VGG16_Weights.IMAGENET1K_V1
    "vgg16_bn": (138_365_992, 15.47, 224),  # VGG16_BN_Weights.IMAGENET1K_V1
    "vgg19": (143_667_240, 19.632, 224),  # VGG19_Weights.IMAGENET1K_V1
    "vgg19_bn": (143_678_248, 19.632, 224),  # VGG19_BN_Weights.IMAGENET1K_V1
    "resnet18": (11_689_512, 1.814, 224),  # ResNet18_Weights.IMAGENET1K_V1
    "resnet34": (21_797_672, 3.664, 224),  # ResNet34_Weights.IMAGENET1K_V1
    "resnet50": (25_557_032, 4.089, 224),  # ResNet50_Weights.IMAGENET1K_V2
    "resnet101": (44_549_160, 7.801, 224),  # ResNet101_Weights.IMAGENET1K_V2
    "resnet152": (60_192_808, 11.514, 224),  # ResNet152_Weights.IMAGENET1K_V2
    "resnext50_32x4d": (25_028_904, 4.23, 224),  # ResNeXt50_32X4D_Weights.IMAGENET1K_V2
    "resnext101_32x8d": (88_791_336, 16.414, 224),  # ResNeXt101_32X8D_Weights.IMAGENET1K_V2
    "resnext101_64x4d": (83_455_272, 15.46, 224),  # ResNeXt101_64X4D_Weights.IMAGENET1K_V1
    "wide_resnet50_2": (68_883_240, 11.398, 224),  # Wide_ResNet50_2_Weights.IMAGENET1K_V2
    "wide_resnet101_2": (126_886_696, 22.753, 224),  # Wide_ResNet101_2_Weights.IMAGENET1K_V2
    "googlenet": (6_624_904, 1.498, 224),  # GoogLeNet_Weights.IMAGENET1K_V1
    "inception_v3": (27_161_264, 5.713, 299),  # Inception_V3_Weights.IMAGENET1K_V1
    "densenet121": (7_978_856, 2.834, 224),  # DenseNet121_Weights.IMAGENET1K_V1
    "densenet161": (28_681_000, 7.728, 224),  # DenseNet161_Weights.IMAGENET1K_V1
    "densenet169": (14_149_480, 3.36, 224),  # DenseNet169_Weights.IMAGENET1K_V1
    "densenet201": (20_013_928, 4.291, 224),  # DenseNet201_Weights.IMAGENET1K_V1
    "squeezenet1_0": (1_248_424, 0.819, 224),  # SqueezeNet1_0_Weights.IMAGENET1K_V1
    "squeezenet1_1": (1_235_496, 0.349, 224),  # SqueezeNet1_1_Weights.IMAGENET1K_V1
    "mnasnet0_5": (2_218_512, 0.104, 224),  # MNASNet0_5_Weights.IMAGENET1K_V1
    "mnasnet0_75": (3_170_208, 0.215, 224),  # MNASNet0_75_Weights.IMAGENET1K_V1
    "mnasnet1_0": (4_383_312, 0.314, 224),  # MNASNet1_0_Weights.IMAGENET1K_V1
    "mnasnet1_3": (6_282_256, 0.526, 224),  # MNASNet1_3_Weights.IMAGENET1K_V1
    "mobilenet_v2": (3_504_872, 0.301, 224),  # MobileNet_V2_Weights.IMAGENET1K_V2
    "mobilenet_v3_small": (2_542_856, 0.057, 224),  # MobileNet_V3_Small_Weights.IMAGENET1K_V1
    "mobilenet_v3_large": (5_483_032, 0.217, 224),  # MobileNet_V3_Large_Weights.IMAGENET1K_V2
    "shufflenet_v2_x0_5": (1_366_792, 0.04, 224),  # ShuffleNet_V2_X0_5_Weights.IMAGENET1K_V1
    "shufflenet_v2_x1_0": (2_278_604, 0.145, 224),  # ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1
    "shufflenet_v2_x1_5": (3_503_624, 0.296, 224),  # ShuffleNet_V2_X1_5_Weights.IMAGENET1K_V1
    "shufflenet_v2_x2_0": (7_393_996, 0.583, 224),  # ShuffleNet_V2_X2_0_Weights.IMAGENET1K_V1
    "efficientnet_b0": (5_288_548, 0.386, 224),  # EfficientNet_B0_Weights.IMAGENET1K_V1
    "efficientnet_b1": (7_794_184, 0.687, 240),  # EfficientNet_B1_Weights.IMAGENET1K_V2
    "efficientnet_b2": (9_109_994, 1.088, 288),  # EfficientNet_B2_Weights.IMAGENET1K_V1
    "efficientnet_b3": (12_233_232, 1.827, 300),  # EfficientNet_B3_Weights.IMAGENET1K_V1
    "efficientnet_b4": (19_341_616, 4.394, 380),  # EfficientNet_B4_Weights.IMAGENET1K_V1
    "efficientnet_b5": (30_389_784, 10.266, 456),  # EfficientNet_B5_Weights.IMAGENET1K_V1
    "efficientnet_b6": (43_040_704, 19.068, 528),  # EfficientNet_B6_Weights.IMAGENET1K_V1
    "efficientnet_b7": (66_347_960, 37.746, 600),  # EfficientNet_B7_Weights.IMAGENET1K_V1
    "efficientnet_v2_s": (21_458_488, 8.366, 384),  # EfficientNet_V2_S_Weights.IMAGENET1K_V1
    "efficientnet_v2_m": (54_139_356, 24.582, 480),  # EfficientNet_V2_M_Weights.IMAGENET1K_V1
    "efficientnet_v2_l": (118_515_272, 56.08, 480),  # EfficientNet_V2_L_Weights.IMAGENET1K_V1
    "regnet_x_400mf": (5_495_976, 0.414, 224),  # RegNet_X_400MF_Weights.IMAGENET1K_V2
    "regnet_x_800mf": (7_259_656, 0.8, 224),  # RegNet_X_800MF_Weights.IMAGENET1K_V2
    "regnet_x_1_6gf": (9_190_136, 1.603, 224),  # RegNet_X_1_6GF_Weights.IMAGENET1K_V2
    "regnet_x_3_2gf": (15_296_552, 3.177, 224),  # RegNet_X_3_2GF_Weights.IMAGENET1K_V2
    "regnet_x_8gf": (39_572_648, 7.995, 224),  # RegNet_X_8GF_Weights.IMAGENET1K_V2
    "regnet_x_16gf": (54_278_536, 15.941, 224),  # RegNet_X_16GF_Weights.IMAGENET1K_V2
    "regnet_x_32gf": (107_811_560, 31.736, 224),  # RegNet_X_32GF_Weights.IMAGENET1K_V2
    "regnet_y_400mf": (4_344_144, 0.402, 224),  # RegNet_Y_400MF_Weights.IMAGENET1K_V2
    "regnet_y_800mf": (6_432_512, 0.834, 224),  # RegNet_Y_800MF_Weights.IMAGENET1K_V2
    "regnet_y_1_6gf": (11_202_430, 1.612, 224),  # RegNet_Y_1_6GF_Weights.IMAGENET1K_V2
    "regnet_y_3_2gf": (19_436_338, 3.176, 224),  # RegNet_Y_3_2GF_Weights.IMAGENET1K_V2
    "regnet_y_8gf": (39_381_472, 8.473, 224),  # RegNet_Y_8GF_Weights.IMAGENET1K_V2
    "regnet_y_16gf": (83_590_140, 15.912, 224),  # RegNet_Y_16GF_Weights.IMAGENET1K_V2
    "regnet_y_32gf": (145_046_770, 32.28, 224),  # RegNet_Y_32GF_Weights.IMAGENET1K_V2
    "regnet_y_128gf": (644_812_894, 374.57, 384),  # RegNet_Y_128GF_Weights.IMAGENET1K_SWAG_E2E_V1
    "convnext_tiny": (28_589_128, 4.456, 224),  # ConvNeXt_Tiny_Weights.IMAGENET1K_V1
    "convnext_small": (50_223_688, 8.684, 224),  # ConvNeXt_Small_Weights.IMAGENET1K_V1
    "convnext_base": (88_591_464, 15.355, 224),  # ConvNeXt_Base_Weights.IMAGENET1K_V1
    "convnext_large": (197_767_336, 34.361, 224),  # ConvNeXt_Large_Weights.IMAGENET1K_V1
}
