//! POSIX conformance: `packaging/pjdfstest.sh` runs pjdfstest (the Rust
//! rewrite, 398 cases) inside a real share, and every case's result must be
//! the one `pjdfstest-expected.txt` (beside this file) lists: a new failure
//! and a new pass both fail this test, with the list of differences. The
//! expected list says, for each group of expected failures, why.
//!
//! To renew the list after a deliberate change, run
//! `PJDFSTEST_RESULTS=/tmp/results.txt sh packaging/pjdfstest.sh` and carry
//! the changed lines over, with their reason.

use std::collections::BTreeMap;
use std::process::Command;

const EXPECTED: &str = include_str!("pjdfstest-expected.txt");

/// What a case may come out as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Pass,
    Fail,
    Skip,
    /// Seen both ways under load: pass or fail.
    Flaky,
}

/// Parses `NAME RESULT [# reason]` lines; `#` lines and blank ones are
/// comments.
fn parse_expected(text: &str) -> BTreeMap<String, Expect> {
    let mut cases = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(name), Some(result), None) = (words.next(), words.next(), words.next()) else {
            panic!(
                "pjdfstest-expected.txt:{}: not `NAME RESULT`: {line:?}",
                n + 1
            );
        };
        let expect = match result {
            "pass" => Expect::Pass,
            "fail" => Expect::Fail,
            "skip" => Expect::Skip,
            "flaky" => Expect::Flaky,
            other => panic!("pjdfstest-expected.txt:{}: unknown result {other:?}", n + 1),
        };
        let before = cases.insert(name.to_string(), expect);
        assert!(before.is_none(), "pjdfstest-expected.txt: {name} twice");
    }
    cases
}

/// The differences between what was expected and what came out.
fn differences(expected: &BTreeMap<String, Expect>, got: &BTreeMap<String, String>) -> Vec<String> {
    let mut diffs = Vec::new();
    for (name, want) in expected {
        let Some(result) = got.get(name) else {
            diffs.push(format!("{name}: expected {want:?}, did not run"));
            continue;
        };
        let fits = match want {
            Expect::Pass => result == "pass",
            Expect::Fail => result == "fail",
            Expect::Skip => result == "skip",
            Expect::Flaky => result == "pass" || result == "fail",
        };
        if !fits {
            diffs.push(format!("{name}: expected {want:?}, got {result}"));
        }
    }
    for (name, result) in got {
        if !expected.contains_key(name) {
            diffs.push(format!("{name}: not in the list, got {result}"));
        }
    }
    diffs
}

#[test]
fn every_pjdfstest_case_gives_its_expected_result() {
    let expected = parse_expected(EXPECTED);
    let results = std::env::temp_dir().join(format!("zos-pjdfstest-{}.txt", std::process::id()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/pjdfstest.sh");
    let out = Command::new("sh")
        .arg(script)
        .env("PJDFSTEST_RESULTS", &results)
        .output()
        .expect("run pjdfstest.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pjdfstest.sh failed:\n{stdout}\n{stderr}"
    );
    let text = std::fs::read_to_string(&results).expect("the script wrote its results");
    let _ = std::fs::remove_file(&results);
    let got: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(name, result)| (name.to_string(), result.to_string()))
        .collect();
    assert!(!got.is_empty(), "no results:\n{stdout}\n{stderr}");
    let diffs = differences(&expected, &got);
    assert!(
        diffs.is_empty(),
        "pjdfstest inside a share differs from pjdfstest-expected.txt in {} case(s):\n  {}\n\n{stdout}",
        diffs.len(),
        diffs.join("\n  ")
    );
}

#[test]
fn the_comparison_reports_new_failures_new_passes_and_missing_cases() {
    let expected = parse_expected("a pass\nb fail # why\nc flaky\nd skip\n# x pass\ne pass\n");
    let got: BTreeMap<String, String> = [
        ("a", "fail"),
        ("b", "pass"),
        ("c", "fail"),
        ("d", "skip"),
        ("f", "pass"),
    ]
    .into_iter()
    .map(|(n, r)| (n.to_string(), r.to_string()))
    .collect();
    assert_eq!(
        differences(&expected, &got),
        [
            "a: expected Pass, got fail",
            "b: expected Fail, got pass",
            "e: expected Pass, did not run",
            "f: not in the list, got pass",
        ]
    );
}
