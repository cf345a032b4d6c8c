// libs/train on a random tiny Llama (libs/model/test_util.h: vocab 256, hidden 64, 2 layers), CPU,
// float32. Label `slow` (libtorch).
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "libs/model/peft_adapter.h"
#include "libs/model/safetensors.h"
#include "libs/model/test_util.h"
#include "libs/train/checkpoint_format.h"
#include "libs/train/checkpoint_store.h"
#include "libs/train/data.h"
#include "libs/train/packed_forward.h"
#include "libs/train/packing.h"
#include "libs/train/reducer.h"
#include "libs/train/schedule.h"
#include "libs/train/trainer.h"

namespace temper::train {
namespace {

namespace fs = std::filesystem;
using model::testing::TempDir;
using model::testing::TinyConfig;

model::Transformer TinyModel(uint64_t seed = 0) {
  torch::manual_seed(seed);
  return model::Transformer(TinyConfig());
}

model::LoraConfig Lora(int64_t r = 8, std::vector<std::string> targets = {"q_proj", "v_proj", "down_proj"},
                       double dropout = 0.0) {
  model::LoraConfig c;
  c.r = r;
  c.alpha = 2.0 * r;
  c.dropout = dropout;
  c.target_modules = std::move(targets);
  return c;
}

// A learnable toy task: prompts "<a> <b>", completions count up from a+b.
std::vector<Example> Examples(int n = 24) {
  std::vector<Example> out;
  for (int i = 0; i < n; ++i) {
    Example e;
    e.prompt = {1, 10 + i % 7, 20 + i % 5};
    for (int k = 0; k < 6 + i % 4; ++k) e.completion.push_back(50 + (i % 7 + i % 5 + k) % 40);
    e.completion.push_back(2);
    e.weight = 1.0f + static_cast<float>(i % 3) * 0.5f;
    out.push_back(e);
  }
  return out;
}

TrainOptions Options() {
  TrainOptions o;
  o.learning_rate = 5e-3;
  o.warmup_steps = 2;
  o.max_steps = 12;
  o.micro_batch_size = 2;
  o.gradient_accumulation = 2;
  o.seq_len = 32;
  o.seed = 17;
  return o;
}

std::unique_ptr<Trainer> MakeTrainer(TrainOptions o, model::LoraConfig lora = Lora(), uint64_t model_seed = 0,
                                     std::vector<Example> data = Examples(), GradientReducer* reducer = nullptr) {
  model::Transformer m = TinyModel(model_seed);
  EXPECT_TRUE(model::ApplyLora(m, lora, 5).ok());
  auto t = Trainer::Create(m, lora, std::move(data), o, reducer);
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(*t);
}

std::vector<double> TrainSteps(Trainer& t, int steps) {
  std::vector<double> losses;
  for (int i = 0; i < steps; ++i) {
    auto s = t.Step();
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) break;
    losses.push_back(s->loss);
  }
  return losses;
}

TEST(DataTest, ParsesTextAndIdsAndRejectsBadLines) {
  DataOptions o;
  o.eos_id = 2;
  o.vocab_size = 256;
  auto ex = ParseExamplesJsonl(
      "{\"prompt\": \"ab\", \"completion\": \"c\", \"weight\": 0.5}\n\n"
      "{\"prompt_ids\": [1, 2], \"completion_ids\": [7]}\n",
      ByteTokenizer(), o, "mem");
  ASSERT_TRUE(ex.ok()) << ex.status();
  ASSERT_EQ(ex->size(), 2u);
  EXPECT_EQ((*ex)[0].prompt, (std::vector<int32_t>{'a', 'b'}));
  EXPECT_EQ((*ex)[0].completion, (std::vector<int32_t>{'c', 2}));
  EXPECT_FLOAT_EQ((*ex)[0].weight, 0.5f);
  EXPECT_EQ((*ex)[1].completion, (std::vector<int32_t>{7, 2}));
  auto bad = ParseExamplesJsonl("{\"prompt\": \"a\", \"completion\": \"b\", \"weight\": -1}\n", ByteTokenizer(), o, "f.jsonl");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("f.jsonl:1"), std::string::npos);
  EXPECT_FALSE(ParseExamplesJsonl("{\"prompt_ids\": [1], \"completion_ids\": [999]}", {}, o, "m").ok());
  EXPECT_FALSE(ParseExamplesJsonl("{\"prompt\": \"a\", \"completion\": \"b\"}", {}, {}, "m").ok());  // no tokenizer
  EXPECT_FALSE(ParseExamplesJsonl("not json", {}, {}, "m").ok());
}

TEST(ScheduleTest, MatchesTransformersCosineWithWarmup) {
  EXPECT_DOUBLE_EQ(CosineWithWarmup(0, 4, 10, 1.0), 0.0);
  EXPECT_DOUBLE_EQ(CosineWithWarmup(2, 4, 10, 1.0), 0.5);
  EXPECT_DOUBLE_EQ(CosineWithWarmup(4, 4, 10, 1.0), 1.0);
  EXPECT_NEAR(CosineWithWarmup(7, 4, 10, 1.0), 0.5, 1e-12);
  EXPECT_NEAR(CosineWithWarmup(10, 4, 10, 1.0), 0.0, 1e-12);
}

TEST(PackingTest, DocumentsPositionsPromptMaskAndWeights) {
  std::vector<Example> ex(2);
  ex[0] = {{1, 2}, {3, 4}, 2.0f};
  ex[1] = {{5}, {6, 7, 8}, 0.5f};
  PackingOptions o;
  o.seq_len = 9;  // both documents (4 + 4 tokens) and one padding slot
  o.rows = 1;
  o.seed = 3;
  Packer p(&ex, o);
  auto order = p.Order(0);
  DataCursor c;
  PackedBatch b = p.Next(&c);
  EXPECT_EQ(b.documents, 2);
  EXPECT_EQ(c, (DataCursor{1, 0}));  // both taken: the cursor stands at the next epoch's start
  // Whichever comes first, each document's positions restart at 0 and doc ids count up.
  const Example& first = ex[order[0]];
  const int64_t n0 = static_cast<int64_t>(first.prompt.size() + first.completion.size());
  EXPECT_EQ(b.position_ids[0][n0].item<int64_t>(), 0);
  EXPECT_EQ(b.doc_ids[0][n0 - 1].item<int64_t>(), 0);
  EXPECT_EQ(b.doc_ids[0][n0].item<int64_t>(), 1);
  EXPECT_EQ(b.doc_ids[0][8].item<int64_t>(), -1);  // padding
  // Targets: only completion tokens, predicted from the position before; none across documents.
  auto tg = b.targets[0];
  const int64_t p0 = static_cast<int64_t>(first.prompt.size());
  for (int64_t i = 0; i < p0 - 1; ++i) EXPECT_EQ(tg[i].item<int64_t>(), -100);
  EXPECT_EQ(tg[p0 - 1].item<int64_t>(), first.completion[0]);
  EXPECT_EQ(tg[n0 - 1].item<int64_t>(), -100);  // last token of a document predicts nothing
  EXPECT_FLOAT_EQ(b.weights[0][p0 - 1].item<float>(), first.weight);
  if (p0 > 1) {
    EXPECT_FLOAT_EQ(b.weights[0][0].item<float>(), 0.0f);
  }
  // Same seed, same order; another epoch, (generally) another order; running off the end rolls over.
  EXPECT_EQ(Packer(&ex, o).Order(0), order);
  PackedBatch b2 = p.Next(&c);
  EXPECT_EQ(b2.documents, 2);
  EXPECT_EQ(c, (DataCursor{2, 0}));
}

TEST(PackingTest, NoAttentionAcrossDocuments) {
  model::Transformer m = TinyModel(1);
  torch::NoGradGuard no_grad;
  m->eval();
  // Row: doc A (5 tokens) then doc B (4 tokens); then the same with A's tokens changed; then B alone.
  auto ids = torch::tensor({{3, 9, 27, 81, 243, 7, 11, 13, 17}, {100, 101, 102, 103, 104, 7, 11, 13, 17}}, torch::kInt64);
  auto pos = torch::tensor({{0, 1, 2, 3, 4, 0, 1, 2, 3}, {0, 1, 2, 3, 4, 0, 1, 2, 3}}, torch::kInt64);
  auto doc = torch::tensor({{0, 0, 0, 0, 0, 1, 1, 1, 1}, {0, 0, 0, 0, 0, 1, 1, 1, 1}}, torch::kInt64);
  torch::Tensor logits = PackedForward(m, ids, pos, doc, false);
  torch::Tensor b0 = logits[0].slice(0, 5, 9), b1 = logits[1].slice(0, 5, 9);
  EXPECT_TRUE(torch::equal(b0, b1)) << (b0 - b1).abs().max().item<float>();
  EXPECT_FALSE(torch::allclose(logits[0].slice(0, 0, 5), logits[1].slice(0, 0, 5)));
  // B packed behind A equals B alone in its own row.
  torch::Tensor alone = m->forward(torch::tensor({{7, 11, 13, 17}}, torch::kInt64))[0];
  EXPECT_LT((alone - b0).abs().max().item<float>(), 1e-5);
  // The mask itself: block-diagonal and causal; padding keys never allowed except the diagonal.
  auto mask = DocumentCausalMask(torch::tensor({{0, 0, 1, -1}}, torch::kInt64), std::nullopt)[0][0];
  auto expect = torch::tensor({{1, 0, 0, 0}, {1, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}, torch::kBool);
  EXPECT_TRUE(torch::equal(mask, expect));
}

TEST(PackingTest, ChangingOneDocumentLeavesTheOthersLossAlone) {
  // Through the trainer's loss path: B's per-token loss does not depend on A's tokens.
  model::Transformer m = TinyModel(2);
  torch::NoGradGuard no_grad;
  std::vector<Example> a = {{{1, 2, 3}, {4, 5}, 1.0f}, {{9, 8}, {7, 6, 5}, 1.0f}};
  std::vector<Example> a2 = {{{60, 61, 62}, {63, 64}, 1.0f}, {{9, 8}, {7, 6, 5}, 1.0f}};
  PackingOptions o;
  o.seq_len = 16;
  o.seed = 0;
  auto loss_of_b = [&](std::vector<Example>& ex) {
    Packer p(&ex, o);
    DataCursor c;
    PackedBatch b = p.Next(&c);
    auto logits = PackedForward(m, b.input_ids, b.position_ids, b.doc_ids, false);
    auto ce = torch::nn::functional::cross_entropy(logits.view({-1, 256}), b.targets.view(-1),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone).ignore_index(-100));
    auto order = p.Order(0);
    const int64_t which = order[0] == 1 ? 0 : 1;  // document number of example 1 in the row
    return (ce * (b.doc_ids.view(-1) == which).to(torch::kFloat32)).sum().item<double>();
  };
  EXPECT_EQ(loss_of_b(a), loss_of_b(a2));
}

TEST(TrainerTest, LossFalls) {
  TrainOptions o = Options();
  o.max_steps = 30;
  o.learning_rate = 1e-2;
  auto t = MakeTrainer(o, Lora(8, {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}));
  auto losses = TrainSteps(*t, 30);
  ASSERT_EQ(losses.size(), 30u);
  const double first = (losses[0] + losses[1]) / 2, last = (losses[28] + losses[29]) / 2;
  EXPECT_LT(last, 0.6 * first) << "first " << first << " last " << last;
  EXPECT_TRUE(t->done());
  EXPECT_FALSE(t->Step().ok());
}

TEST(TrainerTest, GradientCheckpointingGivesTheSameSteps) {
  TrainOptions o = Options();
  o.max_steps = 3;
  o.gradient_checkpointing = false;
  // One after the other: each Trainer seeds libtorch's global generator when created.
  auto plain = MakeTrainer(o, Lora(8, {"q_proj", "v_proj", "down_proj"}, 0.1));
  auto a = TrainSteps(*plain, 3);
  o.gradient_checkpointing = true;
  auto ckpt = MakeTrainer(o, Lora(8, {"q_proj", "v_proj", "down_proj"}, 0.1));
  auto b = TrainSteps(*ckpt, 3);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6) << i;
  auto pa = model::LoraParameters(plain->model()), pb = model::LoraParameters(ckpt->model());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_LT((pa[i].second - pb[i].second).abs().max().item<float>(), 1e-6) << pa[i].first;
}

TEST(TrainerTest, ResumeContinuesExactly) {
  TempDir dir("train_resume");
  TrainOptions o = Options();  // dropout, accumulation, checkpointing, packing: every RNG and cursor in play
  const model::LoraConfig lora = Lora(8, {"q_proj", "v_proj", "down_proj"}, 0.1);
  auto whole = MakeTrainer(o, lora);
  auto expected = TrainSteps(*whole, 12);

  auto first = MakeTrainer(o, lora);
  auto got = TrainSteps(*first, 6);
  ASSERT_TRUE(first->SaveState(dir.Join("step-6")).ok());
  DataCursor saved_cursor = first->cursor();
  first.reset();
  torch::manual_seed(12345);  // a new process's RNG would not be where the first one left it
  auto second = MakeTrainer(o, lora, /*model_seed=*/0);
  auto report = second->LoadState(dir.Join("step-6"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->optimizer_reset) << report->reason;
  EXPECT_EQ(second->step(), 6);
  EXPECT_EQ(second->cursor(), saved_cursor);
  auto rest = TrainSteps(*second, 6);
  got.insert(got.end(), rest.begin(), rest.end());
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-6) << "step " << i + 1;
  EXPECT_EQ(second->losses().size(), 12u);
}

TEST(TrainerTest, SavedAdapterIsPeftWithCardAndState) {
  TempDir dir("train_save");
  TrainOptions o = Options();
  o.max_steps = 2;
  auto t = MakeTrainer(o, Lora(4, {"q_proj", "o_proj"}));
  t->set_card_info({"tiny-random-llama", {"mem://examples"}, "random tiny model"});
  TrainSteps(*t, 2);
  const std::string ck = dir.Join("ck");
  ASSERT_TRUE(t->SaveState(ck).ok());
  EXPECT_EQ(t->SaveState(ck).code(), absl::StatusCode::kAlreadyExists);
  for (auto f : {"adapter_config.json", "adapter_model.safetensors", "trainer_state.json", "trainer_state.safetensors", "README.md"})
    EXPECT_TRUE(fs::exists(ck + "/" + f)) << f;
  for (const auto& e : fs::directory_iterator(dir.path())) EXPECT_EQ(e.path().filename().string().rfind(".tmp-", 0), std::string::npos);
  auto file = model::SafetensorsFile::Open(ck + "/adapter_model.safetensors");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->tensors().size(), 2u * 2 * 2);
  const model::TensorView* a = (*file)->Find("base_model.model.model.layers.1.self_attn.o_proj.lora_A.weight");
  const model::TensorView* b = (*file)->Find("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(b->shape, (std::vector<int64_t>{64, 4}));
  auto cfg = nlohmann::json::parse(std::ifstream(ck + "/adapter_config.json"));
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["base_model_name_or_path"], "tiny-random-llama");
  // libs/model reads it back into a fresh model, and gives the trained model's logits.
  model::Transformer fresh = TinyModel(0);
  ASSERT_TRUE(model::LoadAdapter(fresh, ck).ok());
  torch::NoGradGuard no_grad;
  fresh->eval();
  t->model()->eval();
  auto ids = torch::tensor({{1, 10, 20, 50}}, torch::kInt64);
  EXPECT_TRUE(torch::allclose(fresh->forward(ids), t->model()->forward(ids), 1e-6, 1e-6));
  std::ifstream card(ck + "/README.md");
  std::string text((std::istreambuf_iterator<char>(card)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("tiny-random-llama"), std::string::npos);
  EXPECT_NE(text.find("random tiny model"), std::string::npos);
  EXPECT_NE(text.find("| lora.r | 4 |"), std::string::npos);
  EXPECT_NE(text.find("## Training loss"), std::string::npos);
}

TEST(TrainerTest, OptimizerStateOfAnotherAdapterIsReportedAndReset) {
  TempDir dir("train_mismatch");
  TrainOptions o = Options();
  o.max_steps = 4;
  auto r8 = MakeTrainer(o, Lora(8, {"q_proj", "v_proj"}));
  TrainSteps(*r8, 2);
  ASSERT_TRUE(r8->SaveState(dir.Join("r8")).ok());
  auto r4 = MakeTrainer(o, Lora(4, {"q_proj", "v_proj"}));
  TrainSteps(*r4, 1);
  ASSERT_TRUE(r4->SaveState(dir.Join("r4")).ok());
  // An r=4 adapter next to the optimizer state of the r=8 one.
  for (auto f : {"trainer_state.json", "trainer_state.safetensors"})
    fs::copy_file(dir.Join("r8/") + f, dir.Join("r4/") + f, fs::copy_options::overwrite_existing);
  auto loader = MakeTrainer(o, Lora(4, {"q_proj", "v_proj"}), 0);
  auto report = loader->LoadState(dir.Join("r4"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->optimizer_reset);
  EXPECT_NE(report->reason.find("r=8"), std::string::npos) << report->reason;
  EXPECT_EQ(loader->step(), 2);  // schedule and data position still restored
  EXPECT_TRUE(loader->Step().ok());
  // Other targets: same story.
  auto qk = MakeTrainer(o, Lora(4, {"q_proj", "k_proj"}));
  ASSERT_TRUE(qk->SaveState(dir.Join("qk")).ok());
  for (auto f : {"trainer_state.json", "trainer_state.safetensors"})
    fs::copy_file(dir.Join("r4/") + f, dir.Join("qk/") + f, fs::copy_options::overwrite_existing);
  auto loader2 = MakeTrainer(o, Lora(4, {"q_proj", "k_proj"}));
  auto report2 = loader2->LoadState(dir.Join("qk"));
  ASSERT_TRUE(report2.ok()) << report2.status();
  EXPECT_TRUE(report2->optimizer_reset);
  EXPECT_NE(report2->reason.find("target modules"), std::string::npos) << report2->reason;
  // An adapter that does not fit the trainer's LoRA is an error, not a reset.
  auto r16 = MakeTrainer(o, Lora(16, {"q_proj", "v_proj"}));
  EXPECT_EQ(r16->LoadState(dir.Join("r8")).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TrainerTest, TwoRanksEqualOneRankWithTwiceTheRows) {
  TrainOptions o = Options();
  o.max_steps = 4;
  o.micro_batch_size = 2;
  auto single = MakeTrainer(o, Lora());
  auto expected = TrainSteps(*single, 4);
  o.micro_batch_size = 1;
  InProcessGroup group(2);
  std::vector<std::unique_ptr<Trainer>> ranks;
  for (int r = 0; r < 2; ++r) ranks.push_back(MakeTrainer(o, Lora(), 0, Examples(), group.Rank(r)));
  std::vector<std::vector<double>> got(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) threads.emplace_back([&, r] { got[r] = TrainSteps(*ranks[r], 4); });
  for (auto& th : threads) th.join();
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(got[r].size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(got[r][i], expected[i], 1e-5) << "rank " << r << " step " << i;
  }
  auto p1 = model::LoraParameters(single->model()), p2 = model::LoraParameters(ranks[1]->model());
  for (size_t i = 0; i < p1.size(); ++i) EXPECT_LT((p1[i].second - p2[i].second).abs().max().item<float>(), 1e-5) << p1[i].first;
}

TEST(CheckpointStoreTest, KeepsTheLastKAndTheBest) {
  TempDir dir("train_store");
  auto store = CheckpointStore::Open(dir.Join("run"), 2);
  ASSERT_TRUE(store.ok());
  const double losses[] = {3.0, 1.0, 2.0, 2.5, 2.2};
  for (int i = 0; i < 5; ++i) {
    const int64_t step = (i + 1) * 10;
    fs::create_directories(store->PathFor(step));
    std::ofstream(store->PathFor(step) + "/trainer_state.json") << "{}";
    ASSERT_TRUE(store->Record(step, losses[i]).ok());
  }
  std::vector<int64_t> kept;
  for (const auto& e : store->entries()) kept.push_back(e.step);
  EXPECT_EQ(kept, (std::vector<int64_t>{20, 40, 50}));
  EXPECT_FALSE(fs::exists(store->PathFor(10)));
  fs::create_directories(dir.Join("run/.tmp-step-00000060-1"));
  auto reopened = CheckpointStore::Open(dir.Join("run"), 2);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(reopened->Latest()->step, 50);
  EXPECT_EQ(reopened->Best()->step, 20);
  EXPECT_FALSE(fs::exists(dir.Join("run/.tmp-step-00000060-1")));
}

}  // namespace
}  // namespace temper::train
