//! The backup drill's comparison, on no store at all: a table that moves while it is copied,
//! and a sampled fingerprint of a large one. (The backup contract and what SQLite files do are
//! in the `contracts` binary; DynamoDB's in `aws`.)
use latchkey::domain::backups::{compare, expectation};
use latchkey::ports::backup::Snapshot;
use latchkey::ports::store::Item;

fn snapshot(items: &[Item]) -> Snapshot {
    let mut s = Snapshot::fixed(0);
    for item in items {
        s.add(item);
    }
    s
}

/// The bracket around a copy of a busy table: items that moved between the two reads may be in
/// the copy in either state they were read in, but not in a third; unchanged items must match.
#[test]
fn a_moving_table_is_checked_against_both_reads_around_the_copy() {
    let a = Item::new("P#a", "S").with("n", 1);
    let b = Item::new("P#b", "S").with("n", 1);
    let b2 = b.clone().with("n", 2);
    let c = Item::new("P#c", "S").with("n", 1);
    let before = snapshot(&[a.clone(), b.clone()]);
    let after = snapshot(&[a.clone(), b2.clone(), c.clone()]);
    let x = expectation(before.clone(), after.clone(), 10).unwrap();
    assert_eq!((x.stable_items, x.moving.len()), (1, 2));
    assert_eq!((x.total_min, x.total_max), (0, 5));
    for ok in [
        vec![a.clone(), b.clone()],
        vec![a.clone(), b2.clone()],
        vec![a.clone(), b2.clone(), c.clone()],
        vec![a.clone(), b.clone(), c.clone()],
    ] {
        assert_eq!(compare(&x, &snapshot(&ok)), Ok(()), "{ok:?}");
    }
    let third_state = vec![a.clone(), b.clone().with("n", 3)];
    assert!(compare(&x, &snapshot(&third_state)).is_err());
    let stable_changed = vec![a.clone().with("n", 9), b.clone()];
    assert!(compare(&x, &snapshot(&stable_changed)).is_err());
    let stable_missing = vec![b.clone()];
    assert!(compare(&x, &snapshot(&stable_missing)).is_err());
    let b_missing = vec![a.clone()];
    assert!(
        compare(&x, &snapshot(&b_missing)).is_err(),
        "b was in both reads"
    );
    let extra = vec![a.clone(), b.clone(), Item::new("P#z", "S")];
    assert!(compare(&x, &snapshot(&extra)).is_err());
    // Too much churn: no expectation, and the run says why.
    assert!(expectation(before, after, 1).is_err());
}

/// Large tables are fingerprinted over a deterministic sample, still counted in full.
#[test]
fn a_sampled_expectation_still_catches_a_changed_sampled_item() {
    let items: Vec<Item> = (0..2_000)
        .map(|i| Item::new(format!("P#{i}"), "S").with("n", i))
        .collect();
    let mut before = Snapshot::adaptive(100);
    for item in &items {
        before.add(item);
    }
    assert!(before.sample_bits() > 0);
    let mut after = Snapshot::fixed(before.sample_bits());
    for item in &items {
        after.add(item);
    }
    let x = expectation(before.clone(), after.clone(), 10).unwrap();
    assert_eq!((x.total_min, x.total_max), (2_000, 2_000));
    let read = |items: &[Item]| {
        let mut s = Snapshot::fixed(x.sample_bits);
        for item in items {
            s.add(item);
        }
        s
    };
    assert_eq!(compare(&x, &read(&items)), Ok(()));
    let (pk, _) = before.entries().keys().next().unwrap().clone();
    let altered: Vec<Item> = items
        .iter()
        .map(|i| {
            if i.pk == pk {
                i.clone().with("n", -1)
            } else {
                i.clone()
            }
        })
        .collect();
    assert!(compare(&x, &read(&altered)).is_err());
    assert!(compare(&x, &read(&items[1..])).is_err(), "count is exact");
}
