"""Parameter counts torchvision documents for its models (and the reference file lists where it has them)."""
DOCUMENTED = {"alexnet": 61_100_840, "vgg11": 132_863_336, "vgg11_bn": 132_868_840, "vgg13": 133_047_848,
              "vgg13_bn": 133_053_736, "vgg16": 138_357_544, "vgg16_bn": 138_365_992, "vgg19": 143_667_240,
              "vgg19_bn": 143_678_248, "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
              "resnet101": 44_549_160, "resnet152": 60_192_808, "googlenet": 6_624_904,
              "densenet121": 7_978_856, "densenet161": 28_681_000, "densenet169": 14_149_480,
              "densenet201": 20_013_928, "mobilenet_v2": 3_504_872, "squeezenet1_1": 1_235_496}
