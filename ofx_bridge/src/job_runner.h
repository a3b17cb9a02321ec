// Getting a key's sequence from the daemon: submit its job once (or attach to the one already
// running), follow it with the host's progress bar while honouring its abort, check what the daemon
// says, download the frames and cache them. One render drives a key at a time; concurrent renders
// of the same transition wait for its sequence instead of submitting and downloading again.
#pragma once

#include <memory>
#include <string>

#include "frame_cache.h"
#include "images.h"
#include "instance.h"

namespace latentween {

extern const char* const kFallbackNote;

struct JobOutcome {
  std::shared_ptr<const Sequence> sequence;
  bool aborted = false;  // the host aborted: the job goes on, the next render attaches to it
  std::string message;   // why there is no sequence, for the user
};

JobOutcome run_job(Instance& instance, const std::string& key, const ImageView& from, const ImageView& to,
                   const RenderSettings& settings, const std::string& settings_json);

}  // namespace latentween
