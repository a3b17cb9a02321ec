#include "images.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>

#include "host.h"

namespace latentween {
namespace {

int bytes_per_pixel(const ImageView& image) { return image.is_float ? 16 : 4; }

// The view does not own the pixels: a const view still addresses writable host memory.
unsigned char* pixel(const ImageView& image, int x, int y) {
  return image.data + static_cast<ptrdiff_t>(y - image.bounds.y1) * image.row_bytes +
         static_cast<ptrdiff_t>(x - image.bounds.x1) * bytes_per_pixel(image);
}

bool inside(const OfxRectI& r, int x, int y) { return x >= r.x1 && x < r.x2 && y >= r.y1 && y < r.y2; }

// Normalised 0..1 (float images may exceed it) RGBA at a pixel; transparent black outside.
void sample(const ImageView& image, int x, int y, float rgba[4]) {
  if (!inside(image.bounds, x, y)) {
    rgba[0] = rgba[1] = rgba[2] = rgba[3] = 0.0f;
    return;
  }
  const unsigned char* p = pixel(image, x, y);
  if (image.is_float) {
    std::memcpy(rgba, p, 16);
  } else {
    for (int c = 0; c < 4; ++c) rgba[c] = p[c] / 255.0f;
  }
}

void store(ImageView& image, int x, int y, const float rgba[4]) {
  unsigned char* p = pixel(image, x, y);
  if (image.is_float) {
    std::memcpy(p, rgba, 16);
  } else {
    for (int c = 0; c < 4; ++c) p[c] = static_cast<unsigned char>(std::lround(std::clamp(rgba[c], 0.0f, 1.0f) * 255.0f));
  }
}

OfxRectI intersect(const OfxRectI& a, const OfxRectI& b) {
  OfxRectI r{std::max(a.x1, b.x1), std::max(a.y1, b.y1), std::min(a.x2, b.x2), std::min(a.y2, b.y2)};
  if (r.x2 < r.x1) r.x2 = r.x1;
  if (r.y2 < r.y1) r.y2 = r.y1;
  return r;
}

}  // namespace

FetchedImage::FetchedImage(OfxImageClipHandle clip, OfxTime time) {
  if (!clip || g_host.effects->clipGetImage(clip, time, nullptr, &handle_) != kOfxStatOK || !handle_) {
    handle_ = nullptr;
    return;
  }
  void* data = nullptr;
  g_host.props->propGetPointer(handle_, kOfxImagePropData, 0, &data);
  view_.data = static_cast<unsigned char*>(data);
  g_host.props->propGetIntN(handle_, kOfxImagePropBounds, 4, &view_.bounds.x1);
  view_.row_bytes = prop_int(handle_, kOfxImagePropRowBytes);
  std::string depth = prop_string(handle_, kOfxImageEffectPropPixelDepth);
  std::string components = prop_string(handle_, kOfxImageEffectPropComponents);
  view_.is_float = depth == kOfxBitDepthFloat;
  view_.premultiplied = prop_string(handle_, kOfxImageEffectPropPreMultiplication) == kOfxImagePreMultiplied;
  supported_ = components == kOfxImageComponentRGBA && (depth == kOfxBitDepthFloat || depth == kOfxBitDepthByte);
}

FetchedImage::~FetchedImage() {
  if (handle_) g_host.effects->clipReleaseImage(handle_);
}

RgbaImage to_rgba(const ImageView& image) {
  RgbaImage out;
  out.width = image.width();
  out.height = image.height();
  out.depth = image.is_float ? 16 : 8;
  out.samples.resize(static_cast<size_t>(out.width) * out.height * 4);
  const float top = out.max_value();
  size_t k = 0;
  for (int row = 0; row < out.height; ++row) {
    int y = image.bounds.y2 - 1 - row;
    for (int x = image.bounds.x1; x < image.bounds.x2; ++x) {
      float rgba[4];
      sample(image, x, y, rgba);
      float alpha = std::clamp(rgba[3], 0.0f, 1.0f);
      for (int c = 0; c < 4; ++c) {
        float v = rgba[c];
        if (c < 3 && image.premultiplied && alpha > 0.0f) v /= alpha;  // the daemon expects straight alpha
        out.samples[k++] = static_cast<uint16_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * top));
      }
    }
  }
  return out;
}

void write_frame(const RgbaImage& frame, const OfxRectI& reference, ImageView& out, const OfxRectI& window) {
  const OfxRectI area = intersect(window, out.bounds);
  const int ref_w = std::max(1, reference.x2 - reference.x1);
  const int ref_h = std::max(1, reference.y2 - reference.y1);
  const float top = frame.max_value();
  for (int y = area.y1; y < area.y2; ++y) {
    for (int x = area.x1; x < area.x2; ++x) {
      float rgba[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      long fx = x - reference.x1;
      long fy = reference.y2 - 1 - y;  // frame rows run top down
      if (ref_w != frame.width) fx = fx * frame.width / ref_w;
      if (ref_h != frame.height) fy = fy * frame.height / ref_h;
      if (fx >= 0 && fy >= 0 && fx < frame.width && fy < frame.height) {
        const uint16_t* s = &frame.samples[(static_cast<size_t>(fy) * frame.width + fx) * 4];
        for (int c = 0; c < 4; ++c) rgba[c] = s[c] / top;
        if (out.premultiplied) {
          for (int c = 0; c < 3; ++c) rgba[c] *= rgba[3];
        }
      }
      store(out, x, y, rgba);
    }
  }
}

void copy_image(const ImageView& source, ImageView& out, const OfxRectI& window) {
  const OfxRectI area = intersect(window, out.bounds);
  for (int y = area.y1; y < area.y2; ++y) {
    for (int x = area.x1; x < area.x2; ++x) {
      float rgba[4];
      sample(source, x, y, rgba);
      store(out, x, y, rgba);
    }
  }
}

void cross_dissolve(const ImageView* from, const ImageView* to, double amount, ImageView& out, const OfxRectI& window) {
  const OfxRectI area = intersect(window, out.bounds);
  const float t = static_cast<float>(std::clamp(amount, 0.0, 1.0));
  for (int y = area.y1; y < area.y2; ++y) {
    for (int x = area.x1; x < area.x2; ++x) {
      float a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0}, mixed[4];
      if (from) sample(*from, x, y, a);
      if (to) sample(*to, x, y, b);
      for (int c = 0; c < 4; ++c) mixed[c] = (1.0f - t) * a[c] + t * b[c];
      store(out, x, y, mixed);
    }
  }
}

uint64_t content_hash(const ImageView& image) {
  // Not cryptographic: a 64-bit multiply-xorshift over 8-byte words is fast enough to run on every
  // render of a 4K float frame and collisions between real frames are not a practical concern.
  uint64_t h = 0x243F6A8885A308D3ull;
  auto mix = [&h](uint64_t word) {
    h ^= word;
    h *= 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
  };
  mix(static_cast<uint64_t>(image.width()) << 32 | static_cast<uint32_t>(image.height()));
  mix(image.is_float ? 32 : 8);
  const size_t row_size = static_cast<size_t>(image.width()) * bytes_per_pixel(image);
  for (int y = image.bounds.y1; y < image.bounds.y2; ++y) {
    const unsigned char* row = pixel(image, image.bounds.x1, y);
    size_t i = 0;
    for (; i + 8 <= row_size; i += 8) {
      uint64_t word;
      std::memcpy(&word, row + i, 8);
      mix(word);
    }
    for (; i < row_size; ++i) mix(row[i]);
  }
  return h;
}

}  // namespace latentween
