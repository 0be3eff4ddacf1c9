//! The numeric users sandboxes run as: `sandbox_uids`, a range written
//! `FIRST-LAST`, or an instance's own block of systemd's container range.

use serde::{Deserialize, Serialize};

/// A range of numeric uids, written `FIRST-LAST` (both included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidRange {
    pub first: u32,
    pub last: u32,
}

/// Where instance blocks start: systemd's range for containers' uids
/// (524288–1879048191, `systemd-nspawn --private-users`).
const CONTAINER_UIDS: (u32, u32) = (524_288, 1_879_048_191);
/// The size of an instance's block.
const BLOCK: u32 = 65_536;

impl UidRange {
    /// How many uids it holds.
    pub fn count(&self) -> u32 {
        self.last - self.first + 1
    }

    pub fn contains(&self, uid: u32) -> bool {
        (self.first..=self.last).contains(&uid)
    }

    /// The block of `instance`: one of the 65536-uid blocks of systemd's
    /// container range, chosen by a hash (FNV-1a) of the name.
    pub fn for_instance(instance: &str) -> UidRange {
        let hash = instance.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let blocks = u64::from((CONTAINER_UIDS.1 - CONTAINER_UIDS.0 + 1) / BLOCK);
        let first = CONTAINER_UIDS.0 + BLOCK * (hash % blocks) as u32;
        UidRange {
            first,
            last: first + BLOCK - 1,
        }
    }
}

impl std::fmt::Display for UidRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl std::str::FromStr for UidRange {
    type Err = String;
    fn from_str(text: &str) -> Result<UidRange, String> {
        let (first, last) = text
            .split_once('-')
            .ok_or_else(|| format!("must be FIRST-LAST, such as 200000-265535 (got {text:?})"))?;
        let number = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("must be FIRST-LAST, two uids (got {text:?})"))
        };
        Ok(UidRange {
            first: number(first)?,
            last: number(last)?,
        })
    }
}

impl Serialize for UidRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UidRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<UidRange, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

pub(super) fn valid_uids(range: &UidRange) -> Result<(), validator::ValidationError> {
    let refuse = |why: &str| {
        Err(crate::validation::error(
            "uids",
            format!("{why} (got {range})"),
        ))
    };
    if range.first > range.last {
        return refuse("must have FIRST no greater than LAST");
    }
    if range.first == 0 {
        return refuse("must not hold root (0)");
    }
    if range.contains(65_534) || range.contains(65_535) || range.last == u32::MAX {
        return refuse("must not hold nobody (65534), 65535 or 4294967295");
    }
    Ok(())
}
