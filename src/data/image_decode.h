// Decoding JPEG (libjpeg-turbo) and PNG (libpng) files into RGB pixels, and the resize that puts
// every image of a collection at one square size.
#pragma once

#include <torch/types.h>

#include <string>

namespace odyssey {

// The file's pixels as uint8 [H,W,3] RGB (greyscale and palette images expanded, alpha dropped).
// The format comes from the file's first bytes, not its name. Throws odyssey::Error naming the
// file when it is unreadable, truncated or neither JPEG nor PNG.
torch::Tensor decode_image(const std::string& path);

// How an image becomes size x size: "crop" scales the shorter side to size, then takes the
// centre square; "stretch" scales both sides to size (the aspect ratio changes).
enum class ResizeMode { kCrop, kStretch };
ResizeMode parse_resize_mode(const std::string& name);  // "crop" | "stretch"

// uint8 [H,W,C] -> uint8 [size,size,C]: antialiased bilinear (as PIL and torchvision's
// antialias=True), rounded; an image already size x size is returned unchanged.
torch::Tensor resize_square(const torch::Tensor& image, int64_t size, ResizeMode mode);

}  // namespace odyssey
