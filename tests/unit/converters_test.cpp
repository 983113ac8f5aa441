// Converters: CIFAR binary records, JPEG/PNG decoding, the square resize, image-folder layouts,
// and errors naming the file. (Decoding against an independent decoder, PIL, is in
// e2e/test_convert_images.sh.)
#include <gtest/gtest.h>
#include <jpeglib.h>
#include <png.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "data/cifar.h"
#include "data/image_decode.h"
#include "data/image_folder.h"
#include "data/split_reader.h"
#include "test_util.h"

using namespace odyssey;
using odyssey::testing::error_of;
using odyssey::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// n CIFAR records: label bytes, then planes R, G, B where pixel k of plane c is (i + c*7 + k) % 256.
void write_cifar(const std::string& path, int64_t n, int label_bytes, int label_mod) {
  std::ofstream out(path, std::ios::binary);
  for (int64_t i = 0; i < n; ++i) {
    for (int b = 0; b < label_bytes; ++b) out.put(static_cast<char>((i + b) % label_mod));
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 1024; ++k) out.put(static_cast<char>((i + c * 7 + k) % 256));
  }
}

void write_png(const std::string& path, const torch::Tensor& rgb) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(rgb.size(1));
  image.height = static_cast<png_uint_32>(rgb.size(0));
  image.format = PNG_FORMAT_RGB;
  ASSERT_TRUE(png_image_write_to_file(&image, path.c_str(), 0, rgb.contiguous().data_ptr(), 0, nullptr));
}

void write_jpeg(const std::string& path, const torch::Tensor& rgb, int quality) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  FILE* f = std::fopen(path.c_str(), "wb");
  jpeg_stdio_dest(&cinfo, f);
  cinfo.image_width = static_cast<JDIMENSION>(rgb.size(1));
  cinfo.image_height = static_cast<JDIMENSION>(rgb.size(0));
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  auto img = rgb.contiguous();
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = img.data_ptr<uint8_t>() + cinfo.next_scanline * rgb.size(1) * 3;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::fclose(f);
}

torch::Tensor smooth_image(int64_t h, int64_t w) {  // gradients compress well in JPEG
  auto y = torch::arange(h, torch::kFloat).view({h, 1, 1}) * (200.0 / h);
  auto x = torch::arange(w, torch::kFloat).view({1, w, 1}) * (200.0 / w);
  auto c = torch::tensor({0.2f, 0.5f, 0.9f}).view({1, 1, 3});
  return (y * c + x * (1 - c) + 20).round().clamp(0, 255).to(torch::kByte);
}

}  // namespace

TEST(Cifar, RecordsBecomeHwcImages) {
  TempDir dir;
  write_cifar(dir / "b.bin", 3, 1, 10);
  SplitData s = read_cifar_file(dir / "b.bin", 1, 0, 10);
  ASSERT_EQ(s.images.sizes(), (std::vector<int64_t>{3, 32, 32, 3}));
  EXPECT_TRUE(torch::equal(s.labels, torch::tensor({0, 1, 2}, torch::kLong)));
  // image 2, row 1, column 3, green: plane 1, k = 32 + 3.
  EXPECT_EQ(s.images[2][1][3][1].item<int>(), (2 + 7 + 35) % 256);
  EXPECT_EQ(s.images[0][31][31][2].item<int>(), (14 + 1023) % 256);
}

TEST(Cifar, Cifar10And100Folders) {
  TempDir ten, hundred;
  for (int b = 1; b <= 5; ++b) write_cifar(ten / ("data_batch_" + std::to_string(b) + ".bin"), 4, 1, 10);
  write_cifar(ten / "test_batch.bin", 3, 1, 10);
  std::ofstream(ten / "batches.meta.txt") << "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
  CifarData c10 = read_cifar(ten.str());
  EXPECT_EQ(c10.name, "cifar-10");
  EXPECT_EQ(c10.class_names[9], "truck");
  EXPECT_EQ(c10.splits[0].images.size(0), 20);
  EXPECT_EQ(c10.splits[1].images.size(0), 3);

  write_cifar(hundred / "train.bin", 5, 2, 20);  // coarse = i % 20, fine = (i + 1) % 20
  write_cifar(hundred / "test.bin", 2, 2, 20);
  CifarData fine = read_cifar(hundred.str());
  EXPECT_EQ(fine.name, "cifar-100");
  EXPECT_EQ(fine.class_names.size(), 100u);
  EXPECT_EQ(fine.splits[0].labels[0].item<int64_t>(), 1);
  CifarData coarse = read_cifar(hundred.str(), /*coarse=*/true);
  EXPECT_EQ(coarse.class_names.size(), 20u);
  EXPECT_EQ(coarse.splits[0].labels[0].item<int64_t>(), 0);
}

TEST(Cifar, ErrorsNameTheFile) {
  TempDir dir;
  write_cifar(dir / "data_batch_1.bin", 2, 1, 10);
  std::string e = error_of([&] { read_cifar(dir.str()); });
  EXPECT_NE(e.find("data_batch_2.bin' does not exist"), std::string::npos) << e;
  std::ofstream(dir / "cut.bin", std::ios::binary) << std::string(3074, 'x');
  e = error_of([&] { read_cifar_file(dir / "cut.bin", 1, 0, 10); });
  EXPECT_NE(e.find("cut.bin' has 3074 bytes, not a whole number of 3073-byte records"), std::string::npos) << e;
  write_cifar(dir / "wide.bin", 12, 1, 12);  // labels 10 and 11 do not fit CIFAR-10
  e = error_of([&] { read_cifar_file(dir / "wide.bin", 1, 0, 10); });
  EXPECT_NE(e.find("wide.bin' record 10 has label 10, beyond the 10 classes"), std::string::npos) << e;
}

TEST(ImageDecode, PngRoundTripIsExact) {
  TempDir dir;
  torch::manual_seed(3);
  auto img = torch::randint(0, 256, {7, 11, 3}, torch::kByte);
  write_png(dir / "a.png", img);
  EXPECT_TRUE(torch::equal(decode_image(dir / "a.png"), img));
}

TEST(ImageDecode, JpegRoundTripIsClose) {
  TempDir dir;
  auto img = smooth_image(24, 40);
  write_jpeg(dir / "a.jpg", img, 95);
  auto back = decode_image(dir / "a.jpg");
  ASSERT_EQ(back.sizes(), img.sizes());
  double mean_err = (back.to(torch::kFloat) - img.to(torch::kFloat)).abs().mean().item<double>();
  EXPECT_LT(mean_err, 2.0);
}

TEST(ImageDecode, DamagedFilesAreErrorsNamingTheFile) {
  TempDir dir;
  write_jpeg(dir / "a.jpg", smooth_image(64, 64), 90);
  std::ifstream in(dir / "a.jpg", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(dir / "cut.jpg", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  std::string e = error_of([&] { decode_image(dir / "cut.jpg"); });
  EXPECT_NE(e.find("cut.jpg'"), std::string::npos) << e;
  EXPECT_NE(e.find("JPEG"), std::string::npos) << e;
  // Cut inside the image data: libjpeg decodes it with the rest filled in, warning only.
  for (const double kept : {0.7, 0.9, 0.97}) {
    std::ofstream(dir / "short.jpg", std::ios::binary) << bytes.substr(0, static_cast<size_t>(bytes.size() * kept));
    e = error_of([&] { decode_image(dir / "short.jpg"); });
    EXPECT_NE(e.find("JPEG image '" + (dir / "short.jpg") + "' is truncated or damaged: "), std::string::npos)
        << kept << ": " << e;
  }
  // Junk before the end marker is only a warning about extraneous bytes: the pixels are whole.
  ASSERT_EQ(bytes.substr(bytes.size() - 2), "\xff\xd9");
  std::ofstream(dir / "junk.jpg", std::ios::binary) << bytes.substr(0, bytes.size() - 2) + "junk" + "\xff\xd9";
  EXPECT_TRUE(torch::equal(decode_image(dir / "junk.jpg"), decode_image(dir / "a.jpg")));
  std::ofstream(dir / "text.png") << "not an image at all";
  e = error_of([&] { decode_image(dir / "text.png"); });
  EXPECT_NE(e.find("image '" + (dir / "text.png") + "' is neither JPEG nor PNG"), std::string::npos) << e;
  write_png(dir / "b.png", smooth_image(16, 16));
  std::ifstream pin(dir / "b.png", std::ios::binary);
  std::string pbytes((std::istreambuf_iterator<char>(pin)), {});
  std::ofstream(dir / "cut.png", std::ios::binary) << pbytes.substr(0, pbytes.size() - 30);
  e = error_of([&] { decode_image(dir / "cut.png"); });
  EXPECT_NE(e.find("cannot decode PNG image '" + (dir / "cut.png") + "'"), std::string::npos) << e;
}

TEST(ImageDecode, ResizeSquare) {
  auto flat = torch::full({30, 50, 3}, 77, torch::kByte);
  auto r = resize_square(flat, 10, ResizeMode::kCrop);
  ASSERT_EQ(r.sizes(), (std::vector<int64_t>{10, 10, 3}));
  EXPECT_TRUE(torch::equal(r, torch::full({10, 10, 3}, 77, torch::kByte)));
  // Crop keeps the centre: left and right thirds differ from the middle.
  auto bands = torch::zeros({20, 60, 3}, torch::kByte);
  bands.narrow(1, 20, 20).fill_(200);
  auto c = resize_square(bands, 20, ResizeMode::kCrop);
  EXPECT_TRUE(torch::equal(c, torch::full({20, 20, 3}, 200, torch::kByte)));
  auto s = resize_square(bands, 20, ResizeMode::kStretch);
  EXPECT_EQ(s[10][0][0].item<int>(), 0);
  EXPECT_EQ(s[10][10][0].item<int>(), 200);
  EXPECT_TRUE(torch::equal(resize_square(bands.narrow(1, 0, 20), 20, ResizeMode::kCrop),
                           bands.narrow(1, 0, 20)));
}

TEST(ImageFolder, LayoutsAndConversion) {
  TempDir src, out;
  for (auto split : {"train", "val"})
    for (auto cls : {"cat", "dog"}) fs::create_directories(src / (std::string(split) + "/" + cls));
  write_png(src / "train/cat/1.png", torch::full({8, 12, 3}, 10, torch::kByte));
  write_png(src / "train/cat/2.PNG", torch::full({12, 8, 3}, 20, torch::kByte));
  write_jpeg(src / "train/dog/a.jpg", smooth_image(16, 16), 95);
  std::ofstream(src / "train/dog/notes.txt") << "ignored";
  write_png(src / "val/dog/x.png", torch::full({8, 8, 3}, 30, torch::kByte));
  write_png(src / "val/cat/y.png", torch::full({8, 8, 3}, 40, torch::kByte));
  FolderTree tree = scan_image_folder(src.str());
  EXPECT_EQ(tree.class_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(tree.splits.size(), 2u);
  EXPECT_EQ(tree.splits[0].name, "train");
  EXPECT_EQ(tree.splits[0].labels, (std::vector<int64_t>{0, 0, 1}));
  EXPECT_EQ(tree.splits[1].name, "val");
  EXPECT_EQ(tree.ignored, (std::map<std::string, int64_t>{{".txt", 1}}));  // notes.txt, counted

  FolderOptions opt;
  opt.size = 8, opt.shard_samples = 2, opt.threads = 2, opt.progress = false;
  FolderResult r = convert_image_folder(src.str(), out.str(), "pets", tree, opt);
  EXPECT_EQ(r.index.split_size("train"), 3);
  EXPECT_EQ(r.index.split_size("val"), 2);
  EXPECT_EQ(r.index.split("train").size(), 2u);  // 3 images, 2 per shard
  SplitReader train(out.str(), r.index, "train");
  EXPECT_EQ(train.gather_images({0})[0][4][4][0].item<int>(), 10);
  EXPECT_EQ(train.gather_images({1})[0][4][4][0].item<int>(), 20);
  EXPECT_TRUE(torch::equal(train.labels(), torch::tensor({0, 0, 1}, torch::kLong)));
  // mean of the train split's first channel, by hand: images of 10, 20 and the gradient.
  auto dog = train.gather_images({2}).to(torch::kDouble);
  double mean = (10.0 + 20.0 + dog.select(3, 0).mean().item<double>()) / 3 / 255;
  EXPECT_NEAR(r.index.mean[0], mean, 1e-9);

  // One split without split folders; an undecodable file stops, or is skipped and counted.
  TempDir flat, out2, out3;
  fs::create_directories(flat / "a");
  fs::create_directories(flat / "b");
  write_png(flat / "a/1.png", torch::full({8, 8, 3}, 1, torch::kByte));
  write_png(flat / "b/1.png", torch::full({8, 8, 3}, 2, torch::kByte));
  std::ofstream(flat / "b/2.jpg") << "broken";
  FolderTree one = scan_image_folder(flat.str(), "all");
  ASSERT_EQ(one.splits.size(), 1u);
  EXPECT_EQ(one.splits[0].name, "all");
  std::string e = error_of([&] { convert_image_folder(flat.str(), out2.str(), "x", one, opt); });
  EXPECT_NE(e.find("b/2.jpg' is neither JPEG nor PNG"), std::string::npos) << e;
  opt.skip_bad = true;
  FolderResult skipped = convert_image_folder(flat.str(), out3.str(), "x", one, opt);
  EXPECT_EQ(skipped.skipped, 1);
  EXPECT_EQ(skipped.index.split_size("all"), 2);
}

TEST(ImageFolder, LayoutErrors) {
  TempDir src;
  std::string e = error_of([&] { scan_image_folder(src / "missing"); });
  EXPECT_NE(e.find("missing' does not exist"), std::string::npos) << e;
  e = error_of([&] { scan_image_folder(src.str()); });
  EXPECT_NE(e.find("has no subfolders"), std::string::npos) << e;
  fs::create_directories(src / "empty_class");
  e = error_of([&] { scan_image_folder(src.str()); });
  EXPECT_NE(e.find("class folder '" + (src / "empty_class") + "' holds no .jpg, .jpeg or .png file"),
            std::string::npos) << e;
}
