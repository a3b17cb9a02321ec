#include "png_codec.h"

#include <png.h>

#include <cstdio>
#include <cstring>

namespace latentween {
namespace {

// libpng reports errors by longjmp. Each setjmp below lives in a small function that owns no C++
// object, so the jump never skips a destructor; buffers belong to the callers.
struct ErrorSink {
  char message[200];
};

void on_error(png_structp png, png_const_charp text) {
  auto* sink = static_cast<ErrorSink*>(png_get_error_ptr(png));
  std::snprintf(sink->message, sizeof sink->message, "%s", text ? text : "libpng error");
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

struct Source {
  const unsigned char* data;
  size_t size;
  size_t position;
};

void read_bytes(png_structp png, png_bytep out, png_size_t count) {
  auto* source = static_cast<Source*>(png_get_io_ptr(png));
  if (source->size - source->position < count) png_error(png, "the PNG is truncated");
  std::memcpy(out, source->data + source->position, count);
  source->position += count;
}

// libpng is C: an exception must not unwind through it. A failed append becomes a libpng error,
// raised after the catch so the jump leaves no C++ object behind.
void write_bytes(png_structp png, png_bytep data, png_size_t count) noexcept {
  auto* sink = static_cast<std::vector<unsigned char>*>(png_get_io_ptr(png));
  bool stored = true;
  try {
    sink->insert(sink->end(), data, data + count);
  } catch (...) {
    stored = false;
  }
  if (!stored) png_error(png, "out of memory");
}

void flush_nothing(png_structp) {}

bool little_endian() {
  const uint16_t probe = 1;
  unsigned char first;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

// Reads the header and sets up conversion to RGBA; returns the row size, 0 on error.
size_t read_header(png_structp png, png_infop info, Source* source, int* width, int* height, int* depth) {
  if (setjmp(png_jmpbuf(png))) return 0;
  png_set_read_fn(png, source, read_bytes);
  png_set_user_limits(png, 32768, 32768);
  png_read_info(png, info);
  int bits = png_get_bit_depth(png, info);
  int type = png_get_color_type(png, info);
  png_set_expand(png);  // palette to RGB, grey below 8 bits to 8, tRNS to alpha
  if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  if (!(type & PNG_COLOR_MASK_ALPHA) && !png_get_valid(png, info, PNG_INFO_tRNS))
    png_set_filler(png, 0xFFFF, PNG_FILLER_AFTER);
  if (bits == 16 && little_endian()) png_set_swap(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  *width = static_cast<int>(png_get_image_width(png, info));
  *height = static_cast<int>(png_get_image_height(png, info));
  *depth = bits == 16 ? 16 : 8;
  return png_get_rowbytes(png, info);
}

bool read_pixels(png_structp png, png_infop info, png_bytep* rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, info);
  return true;
}

bool write_pixels(png_structp png, png_infop info, std::vector<unsigned char>* sink, int width, int height,
                  int depth, png_bytep* rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, sink, write_bytes, flush_nothing);
  png_set_compression_level(png, 1);  // the daemon decodes it once; speed matters more than size
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), depth,
               PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  if (depth == 16 && little_endian()) png_set_swap(png);
  png_write_image(png, rows);
  png_write_end(png, info);
  return true;
}

}  // namespace

bool decode_png(const std::string& data, RgbaImage& out, std::string& error) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  if (data.size() < 8 || png_sig_cmp(bytes, 0, 8) != 0) {
    error = "the daemon sent a frame that is not a PNG";
    return false;
  }
  ErrorSink sink{};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &sink, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    error = "out of memory decoding a PNG";
    return false;
  }
  Source source{bytes, data.size(), 0};
  int width = 0, height = 0, depth = 8;
  size_t row_bytes = read_header(png, info, &source, &width, &height, &depth);
  bool ok = row_bytes == static_cast<size_t>(width) * 4 * (depth / 8) && width > 0 && height > 0;
  std::vector<unsigned char> buffer;
  std::vector<png_bytep> rows;
  if (ok) {
    buffer.resize(row_bytes * static_cast<size_t>(height));
    for (int y = 0; y < height; ++y) rows.push_back(buffer.data() + row_bytes * static_cast<size_t>(y));
    ok = read_pixels(png, info, rows.data());
  }
  png_destroy_read_struct(&png, &info, nullptr);
  if (!ok) {
    error = std::string("cannot decode the daemon's PNG: ") + (sink.message[0] ? sink.message : "unexpected layout");
    return false;
  }
  out.width = width;
  out.height = height;
  out.depth = depth;
  size_t count = static_cast<size_t>(width) * height * 4;
  out.samples.resize(count);
  if (depth == 16) {
    std::memcpy(out.samples.data(), buffer.data(), count * 2);
  } else {
    for (size_t k = 0; k < count; ++k) out.samples[k] = buffer[k];
  }
  return true;
}

bool encode_png(const RgbaImage& image, std::vector<unsigned char>& out, std::string& error) {
  ErrorSink sink{};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    error = "out of memory encoding a PNG";
    return false;
  }
  size_t count = static_cast<size_t>(image.width) * image.height * 4;
  std::vector<unsigned char> buffer(image.depth == 16 ? count * 2 : count);
  if (image.depth == 16) {
    std::memcpy(buffer.data(), image.samples.data(), count * 2);
  } else {
    for (size_t k = 0; k < count; ++k) buffer[k] = static_cast<unsigned char>(image.samples[k]);
  }
  size_t row_bytes = static_cast<size_t>(image.width) * 4 * (image.depth / 8);
  std::vector<png_bytep> rows;
  for (int y = 0; y < image.height; ++y) rows.push_back(buffer.data() + row_bytes * static_cast<size_t>(y));
  out.clear();
  bool ok = write_pixels(png, info, &out, image.width, image.height, image.depth, rows.data());
  png_destroy_write_struct(&png, &info);
  if (!ok) error = std::string("cannot encode a keyframe as PNG: ") + sink.message;
  return ok;
}

}  // namespace latentween
