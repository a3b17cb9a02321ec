// PNG in memory through libpng: keyframes go to the daemon as PNG, its frames come back as PNG.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace latentween {

// RGBA samples, rows top to bottom (PNG order), each sample 0..255 (depth 8) or 0..65535 (depth 16).
struct RgbaImage {
  int width = 0;
  int height = 0;
  int depth = 8;
  std::vector<uint16_t> samples;  // width * height * 4

  float max_value() const { return depth == 16 ? 65535.0f : 255.0f; }
};

// Encodes at the image's depth; false (with `error` set) when libpng refuses.
bool encode_png(const RgbaImage& image, std::vector<unsigned char>& out, std::string& error);

// Decodes any PNG (grey, palette, RGB, with or without alpha, 1-16 bits) to RGBA at 8 or 16 bits.
bool decode_png(const std::string& data, RgbaImage& out, std::string& error);

}  // namespace latentween
