#!/bin/sh
# Re-draw the pictures of the README (run from the repository root): archdsl draw, default options
# unless noted. The studies and src/ specs use the zoo's block libraries (inside the project: no --allow-path needed).
set -e
draw() { python -m archdsl draw "$@"; }
draw specs/studies/inception_block.yaml --depth 2 -o docs/img/inception_block.svg
draw specs/studies/basic_block_256.yaml --depth 2 -o docs/img/basic_block.svg
draw specs/studies/bottleneck_block_256.yaml --depth 2 -o docs/img/bottleneck_block.svg
draw docs/img/src/dense_block.yaml --depth 3 -o docs/img/dense_block.svg
draw specs/googlenet.yaml -o docs/img/googlenet.svg
draw specs/resnet152.yaml -o docs/img/resnet152.svg
draw specs/densenet201.yaml -o docs/img/densenet201.svg
draw specs/efficientnet_b0.yaml -o docs/img/efficientnet_b0.svg
draw specs/mobilenet_v3_large.yaml -o docs/img/mobilenet_v3_large.svg
draw specs/regnet_y_400mf.yaml -o docs/img/regnet_y_400mf.svg
draw specs/convnext_tiny.yaml -o docs/img/convnext_tiny.svg
