//! The registry is the one list of strategies: every entry can be built,
//! reports its own name, and the README's strategy table is the registry's
//! (regenerated from it, so a strategy added to the registry and not to
//! the README fails here).

use scratchpad::{HostMemory, PoolOptions, STRATEGIES, STRATEGY_NAMES, create_strategy};

/// The README table the registry gives.
fn table() -> String {
    let mut out = String::from(
        "| name | after | policy | stable addresses | memory |\n|---|---|---|---|---|\n",
    );
    for s in STRATEGIES {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            s.name,
            s.after,
            s.policy,
            if s.stable_addresses { "yes" } else { "no" },
            if s.host_only { "host" } else { "any" }
        ));
    }
    out
}

#[test]
fn every_entry_builds_under_its_own_name() {
    assert_eq!(STRATEGY_NAMES.len(), STRATEGIES.len());
    for (name, info) in STRATEGY_NAMES.iter().zip(STRATEGIES) {
        assert_eq!(*name, info.name);
        let strategy = create_strategy(name, HostMemory, &PoolOptions::default()).unwrap();
        assert_eq!(strategy.name(), *name);
    }
    let mut sorted = STRATEGY_NAMES.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), STRATEGY_NAMES.len(), "names are unique");
}

#[test]
fn the_readme_table_is_the_registry() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md at the repository root");
    let expected = table();
    assert!(
        readme.contains(&expected),
        "README.md's strategy table differs from the registry; it should read:\n\n{expected}"
    );
}
