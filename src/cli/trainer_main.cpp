// trainer: train (the main job), evaluate, list models, inspect checkpoints, simulate scaling.
#include <mpi.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpointer.h"
#include "cli/eval_output.h"
#include "cli/fewshot_command.h"
#include "cli/inference.h"
#include "cli/predict_command.h"
#include "cli/simulate_command.h"
#include "common/error.h"
#include "common/exit_codes.h"
#include "common/file.h"
#include "common/h5.h"
#include "common/log.h"
#include "common/text.h"
#include "config/config.h"
#include "dist/agreement.h"
#include "dist/communicator.h"
#include "dist/coordinator.h"
#include "dist/nccl_communicator.h"
#include "dist/process_env.h"
#include "metrics/report.h"
#include "models/cpu_gemm.h"
#include "models/flops.h"
#include "models/meta_model.h"
#include "models/registry.h"
#include "models/weights.h"
#include "models/winograd_conv.h"
#include "train/device.h"
#include "train/trainer.h"

using namespace odyssey;

namespace {

const char* kHelp = R"(trainer: data-parallel image-classifier training (Odyssey)

Usage:
  trainer CONFIG.toml [section.key=value ...]
      Train. Run under MPI for data parallelism:  mpirun -np 2 trainer configs/quickstart.toml
      Overrides take TOML values (train.epochs=3, run.name=exp1, optim.nesterov=false).
      Writes checkpoints/<run.name>/: config.toml, metrics.jsonl, ckpt-step*.h5, latest.
      train.resume=auto continues from the newest complete checkpoint of the run.
  trainer eval CONFIG.toml --checkpoint PATH [--no-ema] [--json FILE] [section.key=value ...]
      Evaluate a checkpoint's weights (its EMA weights when it has them; --no-ema: the live
      ones) on data.eval_split; prints loss, top-1/5, mAP, mIoU, macro-F1, ECE and per-class
      precision, recall, F1, AP, IoU. Reads no train split and writes nothing but --json's
      FILE (the same numbers as one JSON object).
  trainer predict --checkpoint W.h5 --data DIR_OR_SHARD --out P.h5 [--model NAME] [--split S]
                  [--batch N] [--device auto|cpu|cuda] [--no-ema]
      Logits of every image of a dataset split (default test) or of one shard: /logits float32
      [N, classes] and /labels int64 [N] in P.h5. A checkpoint's EMA weights when it has them
      (--no-ema: the live ones). The model name and input size come from the checkpoint or an
      exported weights file (--model for other weights files), and so do the mean/std the run
      normalised with (files without them: the dataset's index.toml). --device auto (the
      default) runs on GPU 0 when there is one.
  trainer fewshot --checkpoint W.h5 --data DIR_OR_SHARD --shots K --episodes E [--split S]
                  [--queries Q] [--model NAME] [--seed N] [--batch N] [--device auto|cpu|cuda]
                  [--no-ema]
      Few-shot accuracy of the model's pooled features on a split (default test): each episode
      takes K random images per class as support and classifies the others (or Q random others
      per class) by cosine similarity to the class means; prints mean accuracy +- 95% CI.
  trainer models
      The model registry: name, parameters at 1000 classes and 3 channels, forward GMACs per
      image and the default input size.
  trainer models NAME [--classes N] [--image-size S] [--in-channels C] [--verify W.h5]
      The model's state_dict entries (torchvision's names) with shapes, the totals and the forward
      MACs per image at that size. With --verify: load W.h5 strictly and compare eval logits on
      its /check/input with /check/logits (files from launch/export_torchvision.py
      --check-batch N).
  trainer checkpoint info PATH
      What a checkpoint holds (step, epoch, model, tensors), every tensor's CRC-32 verified.
  trainer checkpoint export PATH --out W.h5 [--no-ema]
      The model of a verified checkpoint as a weights file (/model only) for model.init_from
      or trainer predict; its EMA weights when it holds them (train.ema_decay), unless --no-ema.
  trainer report RUN_DIR
      Writes RUN_DIR/report.html (curves, PR curves, calibration, confusion matrix, per-class
      table, step-time split) from its metrics.csv and eval-latest.h5. Training writes it at
      the end (metrics.report).
  trainer simulate [--model NAME [--image-size S] [--classes N] [--in-channels C] | --params N]
                   [--batch B | --global-batch G] [--gpus "8 16 ..."]
                   [--compute-ms-per-sample MS | --mfu U [--gmacs-per-image G] [--peak-tflops T]]
                   [--network h100-ib|a100-ib|goyal2017|cpu-shm] [--gpus-per-node N]
                   [--nics-per-node N] [--intra-alpha-us US] [--intra-bw GB/s] [--inter-alpha-us US]
                   [--inter-bw GB/s per NIC] [--cores-per-node C] [--switch-us US]
                   [--threads-per-rank T]
                   [--algo auto|ring|tree|hier] [--bucket-mb MB] [--first-bucket-mb MB]
                   [--grad-bytes-per-param B] [--backward-fraction F] [--overlap F]
                   [--optimizer-ms MS] [--jitter CV] [--baseline-gpus N] [--csv FILE]
                   [--calibrate SWEEP.csv [--fit-min-bytes B] [--fit-max-mb MB]]
                   [--validate scaling.csv [--validate-base RANKS]] [--anchors]
      Predicted step time, throughput and scaling efficiency of data-parallel training from an
      alpha-beta model of the all-reduce (ring, tree, hierarchical; auto = the faster of ring
      and tree, as NCCL picks) overlapped with backward. --calibrate fits the intra-node alpha
      and bandwidth to launch/allreduce-sweep timings (and the link between nodes to those that
      spanned nodes); --validate predicts a launch/scale sweep
      (scaling.csv) from its smallest run's compute time (or --validate-base's) and prints the
      error per run; --csv FILE also writes the table's rows (seconds, fractions) for plotting;
      --anchors prints published anchors (Goyal et
      al. 2017; NVIDIA DeepLearningExamples) and ViT-B/16 and EfficientNet-B0 on 8-1024 H100s.
  trainer --config-reference
      Every config key with its type, default and meaning (Markdown table).
  trainer --help

Signals: SIGTERM, SIGUSR1 or SIGINT to any rank (or SIGUSR1 to mpirun, which forwards it) makes
every rank stop at the same step; rank 0 writes a checkpoint and all exit with code 75.

Exit codes: 0 success; 1 bad command line; 2 bad config, data or checkpoint (the message names
the file and key); 3 failure during training: on one rank (the job is aborted on all ranks), a
collective that timed out (the watchdog names the missing ranks), a checkpoint that could not
be written, or a non-finite loss with train.on_nonfinite = "stop";
4 unexpected internal error; 75 stopped by a signal after a checkpoint (resume with
train.resume=auto).
)";

// Parameters and MACs come from the meta device: no memory, milliseconds per model.
int cmd_models() {
  std::printf("%-16s %14s %9s %6s  %s\n", "name", "params@1000", "GMACs", "input", "description");
  for (const auto& e : ModelRegistry::instance().entries()) {
    const ModelCost cost = measure_model(e.name, {1000, 3, e.default_image_size});
    std::printf("%-16s %14lld %9.3f %6lld  %s\n", e.name.c_str(), static_cast<long long>(cost.parameters),
                cost.macs.giga(), static_cast<long long>(e.default_image_size), e.description.c_str());
  }
  return kExitOk;
}

// Loads W.h5 strictly and compares the model's eval-mode logits on /check/input with
// /check/logits (written by launch/export_torchvision.py --check-batch N from torchvision).
int verify_weights(Classifier& model, const std::string& path) {
  load_weights(model, read_weights(path), /*reset_head=*/false, path);
  std::map<std::string, torch::Tensor> check;
  for (auto& [k, v] : read_weights(path, "check",
                                   "/check holds torchvision's logits to compare with: write the "
                                   "file with launch/export_torchvision.py --check-batch N"))
    check[k] = v;
  ODY_CHECK(check.count("input") && check.count("logits"), "'" + path + "' lacks /check/input or /check/logits",
            "export with --check-batch N");
  torch::NoGradGuard no_grad;
  model.eval();
  auto logits = model.forward(check["input"]);
  auto& want = check["logits"];
  ODY_CHECK(logits.sizes() == want.sizes(), "logits shape differs from /check/logits", "");
  const double err = (logits - want).abs().max().item<double>();
  const double scale = want.abs().max().item<double>();
  ODY_CHECK(scale > 1e-3, ODY_MSG("'" << path << "': /check/logits are at most " << scale << " in magnitude: a "
                                      << "comparison with them would pass for any weights"),
            "a zero-initialised head or fresh BatchNorm statistics: re-export with launch/export_torchvision.py");
  std::printf("max |logit diff| %.3g, max |logit| %.3g, ratio %.3g (bound 1e-4): %s\n", err, scale,
              err / scale, err <= 1e-4 * scale ? "equal" : "DIFFERENT");
  return err <= 1e-4 * scale ? kExitOk : kExitUserError;
}

// trainer models NAME [--classes N] [--image-size S] [--in-channels C] [--verify W.h5]: the
// state_dict entries (parameters, then buffers) with their shapes, as torchvision names them.
int cmd_model_state(const std::vector<std::string>& args) {
  const auto& entry = ModelRegistry::instance().find(args[0]);
  ModelOptions o{1000, 3, entry.default_image_size};
  std::string verify;
  for (size_t i = 1; i < args.size(); i += 2) {
    const bool known = args[i] == "--verify" || args[i] == "--classes" ||
                       args[i] == "--image-size" || args[i] == "--in-channels";
    ODY_USAGE_CHECK(known, "unknown option '" + args[i] + "' for trainer models NAME",
                    "see trainer --help");
    ODY_USAGE_CHECK(i + 1 < args.size(), "option " + args[i] + " needs a value",
                    "see trainer --help");
    if (args[i] == "--verify") {
      verify = args[i + 1];
      continue;
    }
    int64_t v = positive_int_option(args[i], args[i + 1]);
    if (args[i] == "--classes") o.num_classes = v;
    else if (args[i] == "--image-size") o.image_size = v;
    else o.in_channels = v;  // --in-channels
  }
  if (!verify.empty()) return verify_weights(*entry.create(o), verify);
  auto m = create_meta_model(args[0], o);  // shapes only
  int64_t params = 0, entries = 0;
  auto print = [&](const std::string& key, const torch::Tensor& t) {
    std::string shape;
    for (auto d : t.sizes()) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    std::printf("%s [%s]\n", key.c_str(), shape.c_str());
    ++entries;
  };
  for (auto& p : m->named_parameters()) print(p.key(), p.value()), params += p.value().numel();
  for (auto& b : m->named_buffers()) print(b.key(), b.value());
  std::printf("total %lld parameters, %lld state_dict entries\n", static_cast<long long>(params),
              static_cast<long long>(entries));
  const MacCount macs = measure_model(args[0], o).macs;
  std::string kinds;
  for (const auto& [kind, n] : macs.by_kind) kinds += ", " + kind + " " + std::to_string(n);
  std::printf("forward MACs per image at %lldx%lld: %lld (%.3f GMACs%s)\n", static_cast<long long>(o.image_size),
              static_cast<long long>(o.image_size), static_cast<long long>(macs.total()), macs.giga(),
              kinds.c_str());
  return kExitOk;
}

int cmd_checkpoint_info(const std::string& named) {
  const std::string path = checkpoint_file(named);  // a run folder or its `latest` too
  CheckpointData d = read_checkpoint(path);  // verifies every tensor's CRC-32
  const auto& s = d.trainer;
  int64_t n = 0;
  for (const auto& [name, t] : d.model) n += t.numel();
  std::printf("checkpoint    %s (verified: %zu model + %zu optimizer + %zu EMA tensors)\n",
              path.c_str(), d.model.size(), d.optimizer.size(), d.ema.size());
  std::printf("model         %s, %lld values in /model\n", s.model_name.c_str(),
              static_cast<long long>(n));
  std::printf("progress      step %lld, epoch %lld, step %lld of the epoch, %lld samples seen\n",
              (long long)s.step, (long long)s.epoch, (long long)s.step_in_epoch,
              (long long)s.samples_seen);
  std::printf("written by    %lld ranks x batch %lld\n", (long long)s.world_size,
              (long long)s.batch_size);
  if (s.eval_top1 >= 0 && s.eval_step >= 0)
    std::printf("last eval     top-1 %.2f%% after step %lld\n", 100 * s.eval_top1,
                (long long)s.eval_step);
  else if (s.eval_top1 >= 0)
    std::printf("last eval     top-1 %.2f%%\n", 100 * s.eval_top1);
  if (!s.input_mean.empty()) {
    std::string mean, std;
    for (size_t c = 0; c < s.input_mean.size(); ++c) {
      mean += ODY_MSG((c ? " " : "") << s.input_mean[c]);
      std += ODY_MSG((c ? " " : "") << s.input_std[c]);
    }
    std::printf("normalised    mean [%s], std [%s] (predict and fewshot use them)\n", mean.c_str(), std.c_str());
  }
  if (!s.code_version.empty()) std::printf("code version  %s\n", s.code_version.c_str());
  return kExitOk;
}

// trainer checkpoint export PATH --out W.h5: the model of a verified checkpoint as a weights file.
int cmd_checkpoint_export(const std::vector<std::string>& args) {
  std::string in, out;
  bool use_ema = true;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--out" && i + 1 < args.size())
      out = args[++i];
    else if (args[i] == "--no-ema")
      use_ema = false;
    else if (args[i].rfind("--", 0) == 0)
      ODY_USAGE_FAIL("unknown option '" + args[i] + "'", "usage: trainer checkpoint export PATH --out W.h5");
    else if (in.empty())
      in = args[i];
    else
      ODY_USAGE_FAIL("unexpected argument '" + args[i] + "'", "usage: trainer checkpoint export PATH --out W.h5");
  }
  ODY_USAGE_CHECK(!in.empty() && !out.empty(), "trainer checkpoint export needs PATH and --out W.h5", "");
  in = checkpoint_file(in);  // a run folder or its `latest` too
  refuse_run_file_output(out, in, "trainer checkpoint export: --out", "name a new file for the weights");
  CheckpointData d = read_checkpoint(in);  // verified
  const bool ema = use_ema && take_ema_weights(d);
  const AugmentConfig input = run_input(d);  // predict reads it back from the file
  write_weights(out, d.model, {d.trainer.model_name, input.image_size, input.eval_crop,
                               d.trainer.input_mean, d.trainer.input_std});
  std::printf("wrote %s: %zu tensors of %s (step %lld%s, input %s); use it with model.init_from "
              "or trainer predict --checkpoint\n", out.c_str(), d.model.size(),
              d.trainer.model_name.c_str(), (long long)d.trainer.step, ema ? ", EMA weights" : "",
              input.image_size > 0 ? ODY_MSG(input.image_size << " px, eval crop "
                                                              << input.eval_crop).c_str()
                                   : "at the stored size");
  return kExitOk;
}

// The resolved config of the checkpoint trainer eval names ("" for a weights file: resume_from
// names what it is). Rank 0 reads it; the others receive it.
std::string stored_run_config(const std::string& checkpoint) {
  std::error_code ec;
  ODY_CHECK(std::filesystem::exists(checkpoint, ec),
            "trainer eval --checkpoint: '" + checkpoint + "' does not exist", "");
  return with_context("trainer eval --checkpoint", [&] {
    const WeightsInfo info = read_weights_info(checkpoint_file(checkpoint));  // a run folder too
    return info.is_checkpoint ? info.config_toml : std::string();
  });
}

// trainer eval: the input the checkpoint's run evaluated at (augment.image_size, eval_crop), not
// the config's, unless given on the command line (a FixRes-style test at another size): as
// predict and fewshot do. A ViT at another size would not load; a CNN would evaluate silently
// at the config's size.
void take_stored_input(Config& cfg, const std::string& stored_toml, const std::string& checkpoint,
                       const std::vector<std::string>& overrides) {
  if (stored_toml.empty()) return;
  const AugmentConfig stored = stored_eval_input(stored_toml);
  auto overridden = [&](const std::string& key) {
    for (const auto& o : overrides)
      if (o.rfind(key + "=", 0) == 0) return true;
    return false;
  };
  auto take = [&](const char* key, auto& value, auto from_run) {
    if (value == from_run) return;
    if (overridden(key)) {
      log::info("evaluating at {} = {} (the command line); its run used {}", key, value, from_run);
      return;
    }
    log::info("{} = {} from {}'s run (the config says {}; give it on the command line to evaluate "
              "at another)", key, from_run, checkpoint, value);
    value = from_run;
  };
  take("augment.image_size", cfg.augment.image_size, stored.image_size);
  take("augment.eval_crop", cfg.augment.eval_crop, stored.eval_crop);
}

// Splits "CONFIG k=v ... [--checkpoint P] [--no-ema] [--json F]" into its parts (the options: eval
// only; json_out with eval).
void parse_run_args(int argc, char** argv, int first, std::string& config,
                    std::vector<std::string>& overrides, Trainer::EvalOnly* eval, std::string* json_out) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (eval && a == "--checkpoint") {
      ODY_USAGE_CHECK(i + 1 < argc, "option --checkpoint needs a value",
                      "usage: trainer eval CONFIG.toml --checkpoint PATH");
      eval->checkpoint = argv[++i];
    } else if (eval && a == "--no-ema") {
      eval->ema = false;
    } else if (eval && a == "--json") {
      ODY_USAGE_CHECK(i + 1 < argc, "option --json needs a file", "usage: trainer eval ... --json FILE");
      *json_out = argv[++i];
    } else if (a.rfind("--", 0) == 0) {
      ODY_USAGE_FAIL("unknown option '" + a + "'", "see trainer --help");
    } else if (config.empty()) {
      config = a;
    } else {
      overrides.push_back(a);
    }
  }
  ODY_USAGE_CHECK(!config.empty(), "no config file given",
                  eval ? "usage: trainer eval CONFIG.toml --checkpoint PATH [--no-ema] [--json FILE] "
                         "[section.key=value ...]"
                       : "usage: trainer CONFIG.toml [section.key=value ...]");
  if (eval) ODY_USAGE_CHECK(!eval->checkpoint.empty(), "trainer eval needs --checkpoint PATH", "");
}

int cmd_train(int argc, char** argv, int first, bool eval_only, const ProcessEnv& env) {
  // Training: a stop signal from here on (SLURM preempting a job again while it is still reading
  // its data or loading its checkpoint) is recorded instead of ending the ranks mid-setup (exit
  // 138: not requeued): setup stops at its next agreement, or within the read of a split into
  // memory, with exit 75 and nothing trained to save; from the first step on, a step stops with
  // a checkpoint. A second Ctrl-C still ends the process at once. `trainer eval` keeps the
  // signals' default action.
  if (!eval_only) arm_stop_signals();
  // One communicator for setup agreement and training: one ordered stream of collectives.
  std::unique_ptr<Communicator> comm = make_communicator("auto", env.mpi);
  Config cfg;
  Trainer::EvalOnly eval;
  std::string json_out;  // trainer eval --json
  std::unique_ptr<Trainer> trainer;
  std::vector<std::string> overrides;
  agree(*comm, [&] {
    std::string config_path;
    parse_run_args(argc, argv, first, config_path, overrides, eval_only ? &eval : nullptr, &json_out);
    // Before the evaluation, not after it: a --json that cannot be written.
    if (!json_out.empty() && comm->rank() == 0) {
      refuse_run_file_output(json_out, eval.checkpoint, "trainer eval: --json", "name a new file for the metrics");
      check_writable_output(json_out, "trainer eval --json");
    }
    cfg = load_config(config_path, overrides);
    ODY_CHECK(cfg.dist.backend != "single" || env.size == 1,
              ODY_MSG(cfg.source << ": dist.backend = \"single\" but the job has " << env.size
                                 << " ranks"),
              "use dist.backend = \"auto\" or \"mpi\" under mpirun");
  });
  agree(*comm, [&] {  // one config for the job: per-node copies of a file, one edited mid-start
    const std::string mine = to_toml(cfg);
    std::string root = mine;
    comm->broadcast(root, 0);
    if (root == mine) return;
    std::string keys;
    for (const auto& c : config_changes(root, mine))
      keys += "\n  " + c.key + ": rank 0 " + (c.before.empty() ? "(none)" : c.before) + ", rank " +
              std::to_string(comm->rank()) + " " + (c.after.empty() ? "(none)" : c.after);
    ODY_FAIL(cfg.source + ": rank " + std::to_string(comm->rank()) + " resolved another config than rank 0:" +
                 keys,
             "every rank must read the same file with the same overrides (a config on node-local disk "
             "differs between nodes?)");
  });
  if (eval_only) {  // the checkpoint's input size, read on rank 0 (the file need not be on every node)
    std::string stored;
    agree(*comm, [&] {
      if (comm->rank() == 0) stored = stored_run_config(eval.checkpoint);
    });
    comm->broadcast(stored, 0);
    take_stored_input(cfg, stored, eval.checkpoint, overrides);
  }
  if (cfg.dist.backend == "mpi" && comm->name() != "mpi")  // one rank, MPI asked for explicitly
    comm = make_communicator("mpi", env.mpi);
  // The device: "auto" means CUDA only when every rank can use a GPU (one decision for the job)
  // and, with several ranks, GPU tensors can be reduced (NCCL built in, dist.backend not "mpi").
  const bool gpu_reducible = env.size == 1 || (nccl_compiled() && cfg.dist.backend != "mpi");
  std::string device_setting = cfg.train.device;
  if (device_setting == "auto")
    device_setting = comm->allreduce_min(cuda_usable() && gpu_reducible ? 1 : 0) ? "cuda" : "cpu";
  if (cfg.train.device == "auto" && device_setting == "cpu" && env.local_rank == 0)
    if (const std::string gpus = gpu_evidence(); !gpus.empty())  // once a node
      log::warn("train.device = \"auto\" trains on the CPU although this node has GPUs ({}): {}", gpus,
                cpu_choice_reason(gpu_reducible, nccl_compiled(), env.size));
  torch::Device device = torch::kCPU;
  agree(*comm, [&] {
    device = resolve_device(device_setting, env.local_rank, cfg.source);
    ODY_CHECK(cfg.dist.backend != "nccl" || device.is_cuda(),
              ODY_MSG(cfg.source << ": dist.backend = \"nccl\" needs train.device = \"cuda\""),
              "NCCL reduces GPU tensors; CPU ranks use dist.backend = \"mpi\" or \"auto\"");
    ODY_CHECK(!device.is_cuda() || gpu_reducible,
              ODY_MSG(cfg.source << ": train.device = \"cuda\" with " << env.size << " ranks needs "
                                 << (nccl_compiled() ? "dist.backend = \"nccl\" or \"auto\" (MPI "
                                                       "reduces host tensors only)"
                                                     : "NCCL, and this build has none")),
              nccl_compiled() ? "set dist.backend = \"auto\""
                              : "build with NCCL (README: GPUs) or set train.device = \"cpu\"");
  });
  // NCCL for GPU gradients: asked for, or "auto" with several GPU ranks and NCCL built in.
  if (cfg.dist.backend == "nccl" ||
      (cfg.dist.backend == "auto" && device.is_cuda() && env.size > 1 && nccl_compiled())) {
    std::unique_ptr<Communicator> nccl;
    agree(*comm, [&] { nccl = make_communicator("nccl", env.mpi); });
    comm = std::move(nccl);
  }
  comm->set_timeout(cfg.dist.first_timeout_s);
  const CpuShare share = cpu_share(env);  // every rank: a collective of the world
  const int threads = set_cpu_threads(share, static_cast<int>(cfg.train.threads));
  if (device.is_cpu() && cfg.train.threads == 0 && share.usable_cpus < share.node_cpus)
    log::info("note: the {} rank(s) on this node may use {} of its {} CPUs (the launcher's binding, "
              "e.g. mpirun's to one core per rank at -np 2, or the job's CPU set): {} thread(s) "
              "each; mpirun --bind-to none or train.threads change it", env.local_size,
              share.usable_cpus, share.node_cpus, threads);
  reuse_large_blocks(cfg.train.cpu_reuse_large_blocks);
  agree(*comm, [&] { set_cpu_gemm(resolve_cpu_gemm(cfg.train.cpu_gemm, cfg.source + ": train.cpu_gemm")); });
  agree(*comm, [&] { set_cpu_conv(cfg.train.cpu_conv, cfg.source + ": train.cpu_conv"); });
  // Every rank sees local_size < size alike: on every node when the job spans nodes, on none else.
  cfg.dist.spans_nodes = env.local_size < env.size;
  log::info("{} ranks ({} per node), {} CPU threads per rank, device {}{}, backend {}, gradient "
            "buckets {} MB", env.size, env.local_size, threads, device.str(),
            device.is_cpu() ? " (matrix products: " + cpu_gemm_name(cpu_gemm()) +
                                  ", 3x3 convolutions: " +
                                  cpu_conv_name(cpu_conv_for(cfg.train.channels_last)) + ")"
                            : "",
            comm->name(), cfg.dist.effective_bucket_mb());
  agree(*comm, [&] {
    trainer = std::make_unique<Trainer>(cfg, *comm, device,
                                        eval_only ? std::optional(eval) : std::nullopt);
  });
  agree(*comm, [&] { trainer->start(); });

  if (eval_only) {
    auto c = trainer->evaluate();
    agree(*comm, [&] {  // rank 0 writes --json: a failure is every rank's
      report_evaluation(c, trainer->class_names(), eval.checkpoint, trainer->resume_path(), cfg.data.eval_split,
                        comm->rank() == 0 ? json_out : "");
    });
    return kExitOk;
  }
  TrainResult r;
  try {
    r = trainer->run();
  } catch (const Error& e) {
    // A failure on this rank mid-training: report it and end every rank now, before the trainer
    // and the communicator unwind (their threads may be inside a collective the others never
    // join).
    log::error("{}", e.what());
    log::err().flush();
    trainer->finish_checkpoint_writes();  // rank 0: the write in flight completes first
    if (env.size > 1) MPI_Abort(MPI_COMM_WORLD, kExitRuntime);
    return kExitRuntime;
  } catch (const std::exception& e) {  // LibTorch's (out of memory, CUDA): as main's, but the
    log::error("internal error: {}", e.what());    // write in flight completes and no thread unwinds
    log::err().flush();
    trainer->finish_checkpoint_writes();
    if (env.size > 1) MPI_Abort(MPI_COMM_WORLD, kExitInternal);
    return kExitInternal;
  }
  // A stop whose checkpoint failed is a requeue (75) only when this start saved progress; with
  // nothing saved (a full disk from the start) every requeue would train the same steps again and
  // lose them again: exit 3, as any failed checkpoint.
  if (r.checkpoint_failed && r.preempted && r.saved_this_run) {
    log::info("the stop checkpoint could not be written ({}); a requeue resumes from {}",
              r.checkpoint_error, r.last_checkpoint);
    return kExitPreempted;
  }
  if (r.checkpoint_failed) {
    log::info("stopped at step {}: a checkpoint could not be written ({}). The newest complete "
              "checkpoint is {}; free space or fix the folder, then resume with "
              "train.resume=auto", r.steps, r.checkpoint_error,
              r.last_checkpoint.empty() ? "from before this start" : r.last_checkpoint);
    return kExitRuntime;
  }
  if (!r.checkpoint_error.empty())
    log::info("warning: some checkpoints could not be written (last error: {})", r.checkpoint_error);
  if (r.preempted) return kExitPreempted;
  if (r.stopped_nonfinite) return kExitRuntime;
  if (r.skipped_steps > 0)
    log::info("{} of {} updates were skipped (a non-finite loss or gradient, or an fp16 gradient "
              "overflow that lowered the loss scale)", r.skipped_steps, r.steps);
  if (r.paused)
    log::info("stopped at step {} (train.stop_at_step) before the run's end; raise or remove "
              "train.stop_at_step and resume with train.resume=auto to continue", r.steps);
  log::info("{}: {} steps in {:.1f} s; test top-1 accuracy {:.2f}% on {} {} images (top-5 "
            "{:.2f}%, loss {:.4f}); run folder {}",
            r.paused ? "paused" : "done", r.steps, r.seconds, 100 * r.top1, r.eval_samples,
            cfg.data.eval_split, 100 * r.top5, r.loss, r.run_dir);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  route_stop_signals();  // before any thread starts (see dist/coordinator.h)
  configure_allocator();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || help_requested(argc, argv) || args[0] == "help") {  // `eval --help` too
    std::fputs(kHelp, args.empty() ? stderr : stdout);
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args[0] == "--config-reference") {
    std::fputs(config_reference().c_str(), stdout);
    return kExitOk;
  }
  // Training (a config, not a subcommand) records stop signals from here, before MPI_Init: one that
  // reaches a rank while MPI starts (seconds at scale; a job preempted again as it starts, or a
  // signal the batch script passed on at once) ended the rank by its default action (exit 138,
  // not requeued); now setup stops at its first agreement with exit 75.
  static const std::set<std::string> kSubcommands = {"eval", "predict", "fewshot", "models", "checkpoint",
                                                     "report", "simulate"};
  if (!kSubcommands.count(args[0])) arm_stop_signals();
  std::unique_ptr<MpiSession> mpi;
  try {
    mpi = std::make_unique<MpiSession>(&argc, &argv);
    log::init(mpi->env().rank, mpi->env().size);
    h5::quiet_errors();
    // Single-process commands: under mpirun every rank would read the whole split and write
    // the same output file.
    if (args[0] == "predict" || args[0] == "fewshot" || args[0] == "checkpoint" || args[0] == "report")
      ODY_USAGE_CHECK(mpi->env().size == 1,
                      "trainer " + args[0] + " runs as one process, not " +
                          std::to_string(mpi->env().size) + " ranks",
                      "start it without mpirun/srun (or with -np 1)");
    if (args[0] == "models")
      return args.size() > 1 ? cmd_model_state({args.begin() + 1, args.end()}) : cmd_models();
    if (args[0] == "checkpoint") {
      if (args.size() >= 2 && args[1] == "export")
        return cmd_checkpoint_export({args.begin() + 2, args.end()});
      ODY_USAGE_CHECK(args.size() == 3 && args[1] == "info",
                "usage: trainer checkpoint info PATH | trainer checkpoint export PATH --out W.h5", "");
      return cmd_checkpoint_info(args[2]);
    }
    if (args[0] == "predict") return predict_command({args.begin() + 1, args.end()});
    if (args[0] == "report") {
      ODY_USAGE_CHECK(args.size() == 2, "usage: trainer report RUN_DIR", "");
      std::printf("%s\n", write_report(args[1]).c_str());
      return kExitOk;
    }
    if (args[0] == "simulate") return simulate_command({args.begin() + 1, args.end()});
    if (args[0] == "fewshot") return fewshot_command({args.begin() + 1, args.end()});
    if (args[0] == "eval") return cmd_train(argc, argv, 2, /*eval_only=*/true, mpi->env());
    return cmd_train(argc, argv, 1, /*eval_only=*/false, mpi->env());
  } catch (const AgreedFailure& e) {
    return e.exit_code;  // the failing rank printed the message; every rank exits
  } catch (const UsageError& e) {
    log::error("{}", e.what());
    if (mpi && mpi->env().size > 1) mpi->abort(kExitUsage);
    return kExitUsage;
  } catch (const Error& e) {
    // Bad input is agreed (AgreedFailure above, exit 2 on every rank); an Error that reaches here
    // on one rank of several is mostly a failure mid-run (a collective, a watchdog): 3.
    log::error("{}", e.what());
    if (mpi && mpi->env().size > 1) mpi->abort(kExitRuntime);  // ends the other ranks too
    return kExitUserError;
  } catch (const std::filesystem::filesystem_error& e) {  // the OS refused a path (permissions, I/O)
    log::error("{}", e.what());
    if (mpi && mpi->env().size > 1) mpi->abort(kExitRuntime);
    return kExitUserError;
  } catch (const std::exception& e) {
    log::error("internal error: {}", e.what());
    if (mpi && mpi->env().size > 1) mpi->abort(kExitInternal);
    return kExitInternal;
  }
}
