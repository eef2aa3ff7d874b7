"""Train, sample and judge a DCGAN on CIFAR-10 images as a reproducible DVC pipeline."""
