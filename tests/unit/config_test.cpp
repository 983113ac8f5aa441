// Config: defaults, overrides, and one clear error for every class of bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "common/error.h"
#include "config/config.h"

using namespace odyssey;

namespace {
std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(text, "exp.toml", overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Config, DefaultsAndFileValues) {
  Config c = parse_config("[train]\nepochs = 3\n[optim]\nlr = 0.5\nname = \"adamw\"\n", "exp.toml");
  EXPECT_EQ(c.train.epochs, 3);
  EXPECT_DOUBLE_EQ(c.optim.lr, 0.5);
  EXPECT_EQ(c.optim.name, "adamw");
  EXPECT_EQ(c.train.batch_size, Config().train.batch_size);
}

TEST(Config, IntegerAcceptedWhereFloatExpected) {
  EXPECT_DOUBLE_EQ(parse_config("[optim]\nlr = 1\n", "x.toml").optim.lr, 1.0);
}

TEST(Config, OverridesWinOverFile) {
  Config c = parse_config("[train]\nepochs = 3\n", "exp.toml",
                          {"train.epochs=7", "run.name=abc", "optim.nesterov=false",
                           "run.out_dir=\"/tmp/x y\"", "data.train_split=nan",
                           "data.eval_split=2024"});
  EXPECT_EQ(c.train.epochs, 7);
  EXPECT_EQ(c.run.name, "abc");
  EXPECT_FALSE(c.optim.nesterov);
  EXPECT_EQ(c.run.out_dir, "/tmp/x y");
  EXPECT_EQ(c.data.train_split, "nan");  // string keys take the text, not TOML's nan
  EXPECT_EQ(c.data.eval_split, "2024");
}

TEST(Config, UnknownKeyNamesLineAndSuggests) {
  std::string e = error_of("[train]\nepochs = 3\nbatchsize = 4\n");
  EXPECT_NE(e.find("exp.toml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key 'train.batchsize'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'train.batch_size'"), std::string::npos) << e;
}

TEST(Config, UnknownSection) {
  std::string e = error_of("[trian]\nepochs = 3\n");
  EXPECT_NE(e.find("unknown key 'trian.epochs'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'train.epochs'"), std::string::npos) << e;
}

TEST(Config, WrongTypeNamesKeyAndLine) {
  std::string e = error_of("[train]\n\nepochs = \"ten\"\n");
  EXPECT_NE(e.find("exp.toml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("'train.epochs' must be an integer"), std::string::npos) << e;
  e = error_of("[optim]\nnesterov = 1\n");
  EXPECT_NE(e.find("'optim.nesterov' must be true or false"), std::string::npos) << e;
  e = error_of("[run]\nname = 5\n");
  EXPECT_NE(e.find("'run.name' must be a string"), std::string::npos) << e;
}

TEST(Config, OutOfRangeAndBadChoice) {
  std::string e = error_of("[train]\nbatch_size = 0\n");
  EXPECT_NE(e.find("'train.batch_size' = 0 is out of range"), std::string::npos) << e;
  e = error_of("[optim]\nlr = -0.1\n");
  EXPECT_NE(e.find("'optim.lr' = -0.1 is out of range"), std::string::npos) << e;
  e = error_of("[optim]\nname = \"adam\"\n");
  EXPECT_NE(e.find("'optim.name' = \"adam\" is not one of \"sgd\", \"adamw\""), std::string::npos)
      << e;
}

TEST(Config, BadOverrideNamesCommandLine) {
  std::string e = error_of("", {"train.epochs=abc"});
  EXPECT_NE(e.find("command line"), std::string::npos) << e;
  EXPECT_NE(e.find("'train.epochs' must be an integer"), std::string::npos) << e;
  e = error_of("", {"epochs=3"});
  EXPECT_NE(e.find("not of the form section.key"), std::string::npos) << e;
  e = error_of("", {"train.epochz=3"});
  EXPECT_NE(e.find("did you mean 'train.epochs'"), std::string::npos) << e;
  e = error_of("", {"train.lr=0.1"});  // a key of another section: edit distance missed it
  EXPECT_NE(e.find("did you mean 'optim.lr'"), std::string::npos) << e;
  e = error_of("epochs = 3\n[train]\nbatch_size = 8\n");  // a key above every [section]
  EXPECT_NE(e.find("(a key before any [section] header?)"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'train.epochs'"), std::string::npos) << e;
}

TEST(Config, KeysTheChosenOptimizerAndScheduleDoNotReadGetANote) {
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  parse_config("[optim]\nname = \"adamw\"\nmomentum = 0.5\nrho = 0.8\nbeta1 = 0.9\n"
               "[schedule]\nname = \"cosine\"\ndecay_rate = 0.5\n", "x.toml");
  // A run's own config.toml (every key written, at its defaults) fed back: no notes.
  parse_config(to_toml(Config{}), "run/config.toml");
  const std::string out = ::testing::internal::GetCapturedStdout() + ::testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("x.toml: optim.momentum (optim.name = \"adamw\") has no effect"), std::string::npos) << out;
  EXPECT_NE(out.find("x.toml: optim.rho (optim.name = \"adamw\") has no effect"), std::string::npos) << out;
  EXPECT_NE(out.find("x.toml: schedule.decay_rate (schedule.name = \"cosine\") has no effect"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("beta1"), std::string::npos) << out;
  EXPECT_EQ(out.find("run/config.toml"), std::string::npos) << out;
}

TEST(Config, ChecksAcrossKeysNameTheFileAndBothKeys) {
  std::string e = error_of("[train]\nbatch_size = 10\naccum_steps = 3\n");
  EXPECT_NE(e.find("exp.toml: train.accum_steps = 3 does not divide train.batch_size = 10"),
            std::string::npos) << e;
  e = error_of("[model]\nreset_head = true\n");
  EXPECT_NE(e.find("exp.toml: model.reset_head = true without model.init_from"), std::string::npos)
      << e;
  EXPECT_EQ(error_of("[model]\nreset_head = true\ninit_from = \"w.h5\"\n"), "");
  e = error_of("[data]\nshuffle = \"block\"\naug_repeats = 3\n");
  EXPECT_NE(e.find("exp.toml: data.aug_repeats = 3 with data.shuffle = \"block\""), std::string::npos) << e;
  EXPECT_EQ(error_of("[data]\naug_repeats = 3\n"), "");
  e = error_of("[augment]\nrandaugment_policy = \"timm\"\nrandaugment_m = 15\n");
  EXPECT_NE(e.find("exp.toml: augment.randaugment_m = 15 with augment.randaugment_policy = \"timm\""),
            std::string::npos) << e;
  e = error_of("[augment]\nrandaugment_mstd = 0.5\n");
  EXPECT_NE(e.find("exp.toml: augment.randaugment_mstd = 0.5 with augment.randaugment_policy = "
                   "\"torchvision\""), std::string::npos) << e;
  EXPECT_EQ(error_of("[augment]\nrandaugment_policy = \"timm\"\nrandaugment_m = 9\nrandaugment_mstd = 0.5\n"), "");
}

TEST(Config, SyntaxErrorNamesLine) {
  std::string e = error_of("[train]\nepochs = = 3\n");
  EXPECT_NE(e.find("exp.toml:2"), std::string::npos) << e;
  EXPECT_NE(e.find("TOML syntax error"), std::string::npos) << e;
}

TEST(Config, MissingFile) {
  try {
    load_config("/nonexistent/x.toml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'/nonexistent/x.toml'"), std::string::npos);
  }
}

TEST(Config, ResolvedTomlRoundTrips) {
  Config c = parse_config("[optim]\nlr = 0.123456789\n[run]\nname = \"a \\\"q\\\" b\"\n", "x.toml",
                          {"train.epochs=11", "augment.hflip=false"});
  std::string text = to_toml(c);
  Config d = parse_config(text, "resolved.toml");
  EXPECT_EQ(to_toml(d), text);
  EXPECT_DOUBLE_EQ(d.optim.lr, 0.123456789);
  EXPECT_EQ(d.run.name, "a \"q\" b");
  EXPECT_EQ(d.train.epochs, 11);
  EXPECT_FALSE(d.augment.hflip);
}

TEST(Config, ChangesBetweenTwoResolvedConfigsByKey) {
  const std::string before = to_toml(parse_config("[optim]\nlr = 0.1\n", "a.toml"));
  EXPECT_TRUE(config_changes(before, before).empty());
  // A run name holding " = " and a section-like value changes nothing else.
  const std::string after = to_toml(
      parse_config("[optim]\nlr = 0.05\n[run]\nseed = 7\nname = \"x = [y]\"\n", "b.toml"));
  const auto changes = config_changes(before, after);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].key, "run.name");
  EXPECT_EQ(changes[0].after, "\"x = [y]\"");
  EXPECT_EQ(changes[1].key, "run.seed");
  EXPECT_EQ(changes[1].before, "0");
  EXPECT_EQ(changes[1].after, "7");
  EXPECT_EQ(changes[2].key, "optim.lr");
  EXPECT_EQ(changes[2].before, "0.1");
  EXPECT_EQ(changes[2].after, "0.05");
  // Another build's config: a key it lacks is "" on its side; keys this build lacks are left.
  const auto older = config_changes("[optim]\nlr = 0.05\nfancy = 1\n", after);
  ASSERT_FALSE(older.empty());
  EXPECT_EQ(older[0].before, "");
}

TEST(Config, ReferenceListsEveryKey) {
  std::string ref = config_reference();
  std::string text = to_toml(Config());
  // Every key of the resolved config has its row in the reference, and there are no other rows.
  size_t keys = 0;
  std::string section, line;
  std::istringstream lines(text);
  while (std::getline(lines, line)) {
    if (line.size() > 2 && line.front() == '[') {
      section = line.substr(1, line.find(']') - 1);
    } else if (auto eq = line.find(" = "); eq != std::string::npos) {
      ++keys;
      const std::string key = section + "." + line.substr(0, eq);
      EXPECT_NE(ref.find("| `" + key + "` |"), std::string::npos) << key << " has no row";
    }
  }
  size_t rows = std::count(ref.begin(), ref.end(), '\n');
  EXPECT_EQ(rows, keys);
  EXPECT_GE(keys, 90u);
}
