//! Sharding over replicas: which targets this instance polls when several share the work.
//!
//! With `--shard=N --total-shards=M` (the kube-state-metrics convention) an instance polls only
//! the targets whose stable hash of kind and id falls in shard `N`, so `M` instances with the
//! same config (and the same discovery answers) poll every target exactly once between them.
//! The hash is SHA-256 of `kind`, a zero byte and `id`, read as a big-endian number from its
//! first eight bytes, modulo `M`: it depends on nothing but the target, so it is the same on
//! every replica, every restart and every platform. Changing it would move targets between
//! shards on an upgrade, so it is part of the interface.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::target::TargetKey;

/// This instance's share of the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    total: u32,
}

impl Default for Shard {
    /// The only shard: every target.
    fn default() -> Self {
        Self { index: 0, total: 1 }
    }
}

impl Shard {
    /// Shard `index` of `total`; an error naming both flags unless `index < total`.
    pub fn new(index: u32, total: u32) -> Result<Shard, String> {
        if total == 0 {
            return Err("--total-shards must be at least 1".to_owned());
        }
        if index >= total {
            return Err(format!(
                "--shard={index} is not below --total-shards={total}: shards are numbered from 0 to {}",
                total - 1
            ));
        }
        Ok(Shard { index, total })
    }

    /// This shard's number, from 0.
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many shards share the targets.
    pub fn total(self) -> u32 {
        self.total
    }

    /// Whether this shard polls `key`.
    pub fn owns(self, key: &TargetKey) -> bool {
        self.total == 1 || shard_of(key, self.total) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {} of {}", self.index, self.total)
    }
}

/// The shard, of `total`, that polls `key`.
fn shard_of(key: &TargetKey, total: u32) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(key.kind.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(key.id.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(total)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::TargetKind;

    fn key(kind: TargetKind, id: &str) -> TargetKey {
        TargetKey {
            kind,
            id: id.to_owned(),
        }
    }

    #[test]
    fn three_shards_own_every_target_exactly_once_and_share_them_evenly() {
        let keys: Vec<TargetKey> = (0..300)
            .map(|n| key(TargetKind::ALL[n % 4], &format!("{}", 100_000 + n)))
            .collect();
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).expect("shard")).collect();
        let mut per_shard = [0usize; 3];
        for key in &keys {
            let owners: Vec<u32> = shards
                .iter()
                .filter(|shard| shard.owns(key))
                .map(|shard| shard.index())
                .collect();
            assert_eq!(owners.len(), 1, "{key} is owned by {owners:?}");
            per_shard[owners[0] as usize] += 1;
        }
        // A fair hash puts 100 ± a few dozen in each.
        assert!(
            per_shard.iter().all(|&n| (60..=140).contains(&n)),
            "{per_shard:?}"
        );
    }

    #[test]
    fn the_shard_of_a_target_is_fixed_by_its_kind_and_id_alone() {
        // Pinned values: a change here moves targets between replicas on an upgrade.
        let pinned: Vec<u32> = ["1", "2", "3", "4", "5"]
            .iter()
            .map(|id| shard_of(&key(TargetKind::Page, id), 7))
            .collect();
        assert_eq!(pinned, PINNED);
        // The kind is part of the identity: a Page and an account with one id may part.
        let kinds: Vec<u32> = TargetKind::ALL
            .iter()
            .map(|kind| shard_of(&key(*kind, "42"), 1000))
            .collect();
        assert!(kinds.windows(2).any(|pair| pair[0] != pair[1]), "{kinds:?}");
    }

    /// Computed independently: `int.from_bytes(sha256(b"page\\x00" + id).digest()[:8], "big") % 7`.
    const PINNED: [u32; 5] = [4, 1, 3, 2, 3];

    #[test]
    fn a_shard_outside_the_total_is_refused_naming_both_flags() {
        assert_eq!(Shard::default(), Shard::new(0, 1).expect("shard"));
        assert!(Shard::new(0, 0)
            .expect_err("no shards")
            .contains("--total-shards"));
        let error = Shard::new(3, 3).expect_err("shard 3 of 3");
        assert!(
            error.contains("--shard=3") && error.contains("0 to 2"),
            "{error}"
        );
        assert!(Shard::default().owns(&key(TargetKind::Page, "anything")));
    }
}
