// OFX images as the plug-in sees them: fetching and releasing, conversion to and from the PNG
// pixel layout, the cross-dissolve fallback, and the content hash that keys the frame cache.
//
// OFX rows run bottom to top (y1 is the bottom row) and a row may be padded or even negative in
// stride; PNG rows run top to bottom. Every conversion here goes through pixel coordinates.
#pragma once

#include <cstdint>

#include "ofx_minimal.h"
#include "png_codec.h"

namespace latentween {

struct ImageView {
  unsigned char* data = nullptr;
  OfxRectI bounds{0, 0, 0, 0};
  int row_bytes = 0;
  bool is_float = false;       // else 8-bit
  bool premultiplied = false;  // colour stored multiplied by alpha

  bool valid() const { return data && bounds.x2 > bounds.x1 && bounds.y2 > bounds.y1; }
  int width() const { return bounds.x2 - bounds.x1; }
  int height() const { return bounds.y2 - bounds.y1; }
};

// An image fetched from a clip, released when it goes out of scope.
class FetchedImage {
 public:
  FetchedImage() = default;
  FetchedImage(OfxImageClipHandle clip, OfxTime time);
  ~FetchedImage();
  FetchedImage(const FetchedImage&) = delete;
  FetchedImage& operator=(const FetchedImage&) = delete;

  bool ok() const { return view_.valid(); }
  const ImageView& view() const { return view_; }
  // An RGBA byte or float image, the only kinds the plug-in declares.
  bool supported() const { return supported_; }

 private:
  OfxPropertySetHandle handle_ = nullptr;
  ImageView view_;
  bool supported_ = false;
};

// Straight-alpha RGBA in PNG order: 8-bit images give 8-bit samples, float images 16-bit (clipped
// to 0..1, the range the model works in).
RgbaImage to_rgba(const ImageView& image);

// Writes `frame` over `reference` (the pixel rectangle the frame stands for, normally the source
// image's bounds) into the render window of `out`; nearest-sample scaling where the sizes differ.
void write_frame(const RgbaImage& frame, const OfxRectI& reference, ImageView& out, const OfxRectI& window);

// Copies `source` into the window of `out`, pixel for pixel; outside the source is transparent black.
void copy_image(const ImageView& source, ImageView& out, const OfxRectI& window);

// (1 - amount) * from + amount * to, per pixel and channel.
void cross_dissolve(const ImageView* from, const ImageView* to, double amount, ImageView& out, const OfxRectI& window);

// Hash of the pixels (not the row padding), the size and the depth.
uint64_t content_hash(const ImageView& image);

}  // namespace latentween
