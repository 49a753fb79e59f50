//! Bad configs: malformed JSON, every key, bad values; each refused by thresher_loader_new
//! with its status and a message naming the key.

use super::*;

/// `name: body => status, needle;` — thresher_loader_new on the body (with a valid source
/// added, see `Data::with_source`) must fail with `status` naming `needle`.
macro_rules! config_cases {
    ($($name:ident: $body:expr => $status:expr, $needle:expr;)*) => {
        $(
            #[test]
            fn $name() {
                let d = Data::new();
                refused(&d.with_source($body), $status, $needle);
            }
        )*
        pub const CASES: usize = count!($($name)*);
    };
}

config_cases! {
    malformed_json: "{" => INV, "config";
    not_an_object: "[]" => INV, "config";
    null_document: "null" => INV, "config";
    misspelt_key: r#"{"batch_sise": 1}"# => INV, "batch_sise";
    batch_size_zero: r#"{"batch_size": 0}"# => INV, "batch_size";
    batch_size_negative: r#"{"batch_size": -3}"# => INV, "batch_size";
    batch_size_fractional: r#"{"batch_size": 1.5}"# => INV, "batch_size";
    shuffle_not_a_bool: r#"{"shuffle": "yes"}"# => INV, "shuffle";
    drop_last_not_a_bool: r#"{"drop_last": 1}"# => INV, "drop_last";
    seed_negative: r#"{"seed": -1}"# => INV, "seed";
    seed_a_string: r#"{"seed": "x"}"# => INV, "seed";
    workers_zero: r#"{"workers": 0}"# => INV, "workers";
    workers_too_many: r#"{"workers": 100000}"# => INV, "workers";
    prefetch_zero: r#"{"prefetch": 0}"# => INV, "prefetch";
    transform_not_an_object: r#"{"transform": 3}"# => INV, "transform";
    transform_dtype_unknown: r#"{"transform": {"dtype": "f16"}}"# => INV, "transform.dtype";
    transform_layout_unknown: r#"{"transform": {"layout": "chw"}}"#
        => INV, "transform.layout";
    transform_unknown_key: r#"{"transform": {"colour": 1}}"# => INV, "colour";
    normalize_with_u8:
        r#"{"transform": {"dtype": "u8", "normalize": {"mean": [0.5], "std": [0.5]}}}"#
        => INV, "transform.normalize";
    normalize_std_zero: r#"{"transform": {"normalize": {"mean": [0.5], "std": [0]}}}"#
        => INV, "std";
    normalize_lengths_differ:
        r#"{"transform": {"normalize": {"mean": [0.5, 0.1], "std": [1]}}}"#
        => INV, "transform.normalize";
    normalize_without_std: r#"{"transform": {"normalize": {"mean": [0.5]}}}"# => INV, "std";
    policy_without_kind: r#"{"policy": {"prune": 0.3}}"# => INV, "policy.kind";
    policy_kind_unknown: r#"{"policy": {"kind": "nope"}}"# => INV, "nope";
    policy_kind_a_number: r#"{"policy": {"kind": 3}}"# => INV, "policy.kind";
    full_with_prune: r#"{"policy": {"kind": "full", "prune": 0.3}}"# => INV, "prune";
    prune_above_one: r#"{"policy": {"kind": "random", "prune": 1.5}}"# => INV, "policy.prune";
    prune_negative: r#"{"policy": {"kind": "random", "prune": -0.1}}"# => INV, "policy.prune";
    period_zero: r#"{"policy": {"kind": "random", "period": 0}}"# => INV, "policy.period";
    rescale_not_a_bool: r#"{"policy": {"kind": "random", "rescale": "no"}}"#
        => INV, "policy.rescale";
    random_with_explore: r#"{"policy": {"kind": "random", "explore": 0.1}}"# => INV, "explore";
    explore_above_one: r#"{"policy": {"kind": "epsilon_greedy", "explore": 2}}"#
        => INV, "policy.explore";
    momentum_zero: r#"{"policy": {"kind": "epsilon_greedy", "momentum": 0}}"#
        => INV, "policy.momentum";
    ucb_c_negative: r#"{"policy": {"kind": "ucb", "c": -1}}"# => INV, "policy.c";
    ucb_spread_unknown: r#"{"policy": {"kind": "ucb", "spread": "stdev"}}"#
        => INV, "policy.spread";
    infobatch_without_epochs: r#"{"policy": {"kind": "infobatch"}}"# => INV, "epochs";
    infobatch_epochs_zero: r#"{"policy": {"kind": "infobatch", "epochs": 0}}"#
        => INV, "policy.epochs";
    infobatch_anneal_above_one:
        r#"{"policy": {"kind": "infobatch", "epochs": 10, "anneal": 1.5}}"#
        => INV, "policy.anneal";
    drop_hardest_above_one: r#"{"policy": {"kind": "el2n", "drop_hardest": 2}}"#
        => INV, "policy.drop_hardest";
    score_epochs_zero: r#"{"policy": {"kind": "el2n", "score_epochs": 0}}"#
        => INV, "policy.score_epochs";
    grand_prune_too_high: r#"{"policy": {"kind": "grand", "prune": 0.95}}"#
        => INV, "policy.prune";
    scores_from_a_number: r#"{"policy": {"kind": "forgetting", "scores_from": 3}}"#
        => INV, "policy.scores_from";
    influence_with_epsilon: r#"{"policy": {"kind": "influence", "prune": 0.3, "epsilon": 0.1}}"#
        => INV, "epsilon";
    sketch_dim_zero: r#"{"policy": {"kind": "influence", "sketch_dim": 0}}"#
        => INV, "policy.sketch_dim";
    idx_source_without_files: r#"{"source": {"kind": "idx"}}"# => INV, "source";
    source_kind_unknown: r#"{"source": {"kind": "zip", "path": "x"}}"# => INV, "zip";
    source_without_kind: r#"{"source": {"images": "a", "labels": "b"}}"# => INV, "source.kind";
    no_source: "{}" => INV, "source";
    report_directory_missing: r#"{"report": "/nonexistent-dir/r.jsonl"}"# => IO, "report";
    resume_from_missing: r#"{"resume_from": "/nonexistent/ck"}"# => IO, "/nonexistent/ck";
    scores_from_missing: r#"{"policy": {"kind": "el2n", "scores_from": ["/nonexistent/s"]}}"#
        => IO, "/nonexistent/s";
}
