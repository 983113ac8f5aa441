#include "data/image_decode.h"

#include <jpeglib.h>
#include <jerror.h>  // after jpeglib.h: the JWRN_ message codes
#include <png.h>
#include <torch/torch.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "common/error.h"
#include "common/file.h"
#include "data/augment_ops.h"

namespace odyssey {

namespace {

// libjpeg reports errors through error_exit, which must not return: jump back to the decoder.
// Warnings go through emit_message; those saying the entropy-coded data is missing or garbled
// (a truncated or damaged file, which libjpeg would decode with the rest filled in) are kept.
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  char damage[JMSG_LENGTH_MAX] = {};  // the first such warning; empty when none
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Replaces libjpeg's emit_message (which prints warnings to stderr): counts warnings, as libjpeg's
// does, and keeps the first that means missing or garbled image data. Other warnings (extraneous
// bytes between markers, an unknown JFIF revision or Adobe transform, a bad ICC profile) leave
// the pixels whole and are ignored, as by libjpeg's own tools and PIL.
void jpeg_warning(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0) return;  // trace messages
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  ++err->mgr.num_warnings;
  switch (err->mgr.msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_MUST_RESYNC:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_BOGUS_PROGRESSION:
    case JWRN_NOT_SEQUENTIAL:
      if (err->damage[0] == 0) (*cinfo->err->format_message)(cinfo, err->damage);
      break;
    default:
      break;
  }
}

// The libjpeg calls alone, with no C++ object of this frame alive across setjmp/longjmp: fills
// pixels (RGB rows; `four`, the caller's too, holds a CMYK row) and h, w; on failure returns false with the decoder's message. damage: the
// first warning of missing or garbled data, empty when none.
bool jpeg_decode_raw(const std::vector<unsigned char>& bytes, std::vector<uint8_t>* pixels,
                     std::vector<uint8_t>* four, int64_t* h, int64_t* w, char* damage, char* message) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  err.mgr.emit_message = jpeg_warning;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    std::memcpy(message, err.message, JMSG_LENGTH_MAX);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  // Greyscale and YCbCr to RGB by libjpeg-turbo; CMYK and YCCK (Photoshop's, ~22 images of
  // ImageNet's training split), which it cannot turn into RGB, read as CMYK and converted below.
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  *h = cinfo.output_height, *w = cinfo.output_width;
  pixels->resize(static_cast<size_t>(*h * *w * 3));
  four->resize(cmyk ? static_cast<size_t>(*w * 4) : 0);  // the caller's: longjmp skips destructors
  while (cinfo.output_scanline < cinfo.output_height) {
    uint8_t* rgb = pixels->data() + static_cast<int64_t>(cinfo.output_scanline) * *w * 3;
    JSAMPROW row = cmyk ? four->data() : rgb;
    jpeg_read_scanlines(&cinfo, &row, 1);
    // As PIL: its JPEG reader takes CMYK as Adobe's inverted form (raw mode "CMYK;I"), then
    // cmyk2rgb: with C = 255 - c, K = 255 - k, each of R, G, B = (255 - K) - (C (255 - K) / 255)
    // rounded as its MULDIV255.
    for (int64_t x = 0; cmyk && x < *w; ++x) {
      const int nk = (*four)[x * 4 + 3];  // 255 - K
      for (int c = 0; c < 3; ++c) {
        const int t = (255 - (*four)[x * 4 + c]) * nk + 128;
        rgb[x * 3 + c] = static_cast<uint8_t>(std::clamp(nk - (((t >> 8) + t) >> 8), 0, 255));
      }
    }
  }
  jpeg_finish_decompress(&cinfo);  // reads to the end marker: its warnings count too
  std::memcpy(damage, err.damage, JMSG_LENGTH_MAX);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

torch::Tensor decode_jpeg(const std::vector<unsigned char>& bytes, const std::string& path) {
  std::vector<uint8_t> pixels, four;
  int64_t h = 0, w = 0;
  char damage[JMSG_LENGTH_MAX] = {0}, message[JMSG_LENGTH_MAX] = {0};
  ODY_CHECK(jpeg_decode_raw(bytes, &pixels, &four, &h, &w, damage, message),
            "cannot decode JPEG image '" + path + "': " + message,
            "the file is corrupt or truncated");
  ODY_CHECK(damage[0] == 0, "JPEG image '" + path + "' is truncated or damaged: " + damage,
            "re-download or remove the file");
  return torch::from_blob(pixels.data(), {h, w, 3}, torch::kByte).clone();
}

torch::Tensor decode_png(const std::vector<unsigned char>& bytes, const std::string& path) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  ODY_CHECK(png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()),
            "cannot decode PNG image '" + path + "': " + image.message,
            "the file is corrupt or truncated");
  // As PIL's convert("RGB") (torchvision's ImageFolder): palettes and grey expanded, alpha
  // dropped (read as RGBA, then cut: PNG_FORMAT_RGB with no background composites onto whatever
  // the buffer held), 16-bit samples taken as sRGB-encoded (libpng's simplified API otherwise
  // treats them as linear and brightens them: mid-grey 32768 became 188, not 128).
  image.format = PNG_FORMAT_RGBA;
  image.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  auto rgba = torch::empty({static_cast<int64_t>(image.height), static_cast<int64_t>(image.width), 4},
                           torch::kByte);
  const bool ok = png_image_finish_read(&image, nullptr, rgba.data_ptr<uint8_t>(), 0, nullptr);
  std::string message = image.message;
  png_image_free(&image);
  ODY_CHECK(ok, "cannot decode PNG image '" + path + "': " + message,
            "the file is corrupt or truncated");
  return rgba.narrow(2, 0, 3).contiguous();
}

}  // namespace

torch::Tensor decode_image(const std::string& path) {
  auto bytes = read_file_bytes(path, "image");
  static const unsigned char kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPng, 8) == 0) return decode_png(bytes, path);
  if (bytes.size() >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff)
    return decode_jpeg(bytes, path);
  ODY_FAIL("image '" + path + "' is neither JPEG nor PNG (" + std::to_string(bytes.size()) +
               " bytes)",
           "shardify folder reads .jpg, .jpeg and .png files");
}

ResizeMode parse_resize_mode(const std::string& name) {
  if (name == "crop") return ResizeMode::kCrop;
  if (name == "stretch") return ResizeMode::kStretch;
  ODY_FAIL("--resize must be crop or stretch, got '" + name + "'", "");
}

torch::Tensor resize_square(const torch::Tensor& image, int64_t size, ResizeMode mode) {
  const int64_t h = image.size(0), w = image.size(1);
  if (h == size && w == size) return image;
  int64_t nh = size, nw = size;
  if (mode == ResizeMode::kCrop) {  // the shorter side becomes size, the other keeps the aspect
    if (h < w) nw = std::max<int64_t>(size, (w * size + h / 2) / h);
    else nh = std::max<int64_t>(size, (h * size + w / 2) / w);
  }
  auto x = resize(image.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat), nh, nw);
  const int64_t top = (nh - size) / 2, left = (nw - size) / 2;
  x = x.narrow(2, top, size).narrow(3, left, size);
  return x.round_().clamp_(0, 255).to(torch::kByte).squeeze(0).permute({1, 2, 0}).contiguous();
}

}  // namespace odyssey
