#include "cli/eval_output.h"

#include "common/file.h"
#include "common/log.h"
#include "metrics/jsonl.h"

namespace odyssey {

void report_evaluation(const ClassificationCounts& c, const std::vector<std::string>& class_names,
                       const std::string& checkpoint, const std::string& checkpoint_file, const std::string& split,
                       const std::string& json_path) {
  log::info("{} on {} images of split '{}': loss {:.4f} top-1 {:.2f}% top-5 {:.2f}% mAP {:.4f} "
            "mIoU {:.4f} macro-F1 {:.4f} ECE {:.4f}",
            checkpoint, c.count(), split, c.loss(), 100 * c.top1(), 100 * c.top5(), c.mean_ap(), c.mean_iou(),
            c.macro_f1(), c.ece());
  const auto p = c.per_class_precision(), rc = c.per_class_recall(), f1 = c.per_class_f1(),
             ap = c.per_class_ap(), iou = c.per_class_iou();
  const auto support = c.support();
  const int64_t worst = worst_class(c).first;
  auto name = [&](int64_t k) {
    return k < static_cast<int64_t>(class_names.size()) ? class_names[k] : std::to_string(k);
  };
  log::info("{:<20} {:>7} {:>9} {:>7} {:>7} {:>7} {:>7}", "class", "support", "precision", "recall", "F1",
            "AP", "IoU");
  for (int64_t k = 0; k < c.num_classes(); ++k)
    log::info("{:<20} {:>7} {:>9.4f} {:>7.4f} {:>7.4f} {:>7.4f} {:>7.4f}{}", name(k), support[k], p[k], rc[k],
              f1[k], ap[k], iou[k], k == worst ? "  <- worst" : "");
  if (json_path.empty()) return;
  std::vector<JsonRecord> classes;
  for (int64_t k = 0; k < c.num_classes(); ++k)
    classes.push_back(JsonRecord()
                          .add("class", name(k))
                          .add("support", static_cast<int64_t>(support[k]))
                          .add("precision", p[k])
                          .add("recall", rc[k])
                          .add("f1", f1[k])
                          .add("ap", ap[k])
                          .add("iou", iou[k]));
  JsonRecord r;
  r.add("checkpoint", checkpoint).add("checkpoint_file", checkpoint_file).add("split", split)
      .add("images", c.count()).add("loss", c.loss())
      .add("top1", c.top1()).add("top5", c.top5()).add("map", c.mean_ap()).add("miou", c.mean_iou())
      .add("macro_f1", c.macro_f1()).add("ece", c.ece());
  if (c.count() > 0) r.add("worst_class", name(worst));  // none without samples
  r.add("per_class", classes);
  write_text_atomically(json_path, r.str() + "\n");
  log::info("wrote {}", json_path);
}

}  // namespace odyssey
