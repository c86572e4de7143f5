//! Channel quotas of one slot: the part of its capacity an authority keeps for its counters,
//! its call centre or its own staff, and what each channel has taken.
//!
//! Guarantee: the slot word's capacity field is always [`ChannelSlot::word_capacity`], the
//! capacity minus the quota units the channels have not used yet. So the plain path (`reserve`,
//! `reserve_earliest`, their full bits and every reading) sees the open part and nothing else,
//! with the same one compare-and-swap as a slot without quotas; only a reservation *on a
//! channel* and the return of a unit taken from a quota take the chunk's quota lock.
//!
//! The accounting, for a slot of capacity `C` with quotas `q_c` of which `f_c` units are taken:
//! `unused = Σ max(q_c − f_c, 0)`, `word capacity = C − unused`. A unit taken from a quota
//! raises the word's capacity and its held count together (one CAS), which leaves the open part
//! as it was; its return lowers both together while the channel is within its quota, so the unit
//! goes back to the quota it came from. Opening the quotas sets every `q_c` to 0: the unused
//! units become open at once, and a unit still taken from a quota, once returned, goes to the
//! open part.

use std::fmt;

use super::types::SlotIndex;

/// A booking channel of the authority: the web (no channel: [`SlotBook::reserve`]), and the
/// channels it numbers itself, such as its counters (`Channel(1)`) or its call centre
/// (`Channel(2)`).
///
/// [`SlotBook::reserve`]: crate::SlotBook::reserve
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Channel(pub u8);

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "channel {}", self.0)
    }
}

/// Where a record's unit came from: the open part (plain, or by a channel that had used its
/// quota), or a channel's quota. Packed into 10 bits: the channel (8), "taken on a channel"
/// (bit 8) and "from the channel's quota" (bit 9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Part(u16);

const ON_CHANNEL: u16 = 1 << 8;
const FROM_QUOTA: u16 = 1 << 9;
/// Bits of a packed [`Part`].
pub(crate) const PART_BITS: u32 = 10;

impl Part {
    /// A unit taken without a channel.
    pub(crate) const OPEN: Part = Part(0);

    /// A unit taken on `channel`, from its quota or from the open part.
    pub(crate) fn on(channel: Channel, from_quota: bool) -> Self {
        Part(u16::from(channel.0) | ON_CHANNEL | if from_quota { FROM_QUOTA } else { 0 })
    }

    /// The channel the unit was taken on, if any.
    pub(crate) fn channel(self) -> Option<Channel> {
        (self.0 & ON_CHANNEL != 0).then_some(Channel(self.0 as u8))
    }

    /// Whether the unit came from its channel's quota.
    pub(crate) fn is_from_quota(self) -> bool {
        self.0 & FROM_QUOTA != 0
    }

    /// The packed bits (below 2^[`PART_BITS`]).
    pub(crate) fn bits(self) -> u32 {
        u32::from(self.0)
    }

    /// A part from its packed bits, `None` for bits no part has.
    pub(crate) fn from_bits(bits: u32) -> Option<Self> {
        let p = u16::try_from(bits).ok().filter(|&b| b < 1 << PART_BITS)?;
        // "From the quota" without a channel names nothing; neither does a channel number
        // without the "on a channel" bit.
        let plain_with_extra = p & ON_CHANNEL == 0 && p != 0;
        (!plain_with_extra).then_some(Part(p))
    }
}

/// One channel's quota in a slot and what it has taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChannelCount {
    /// Units kept for the channel (0 once the quotas are opened).
    pub(crate) quota: u32,
    /// Units held or booked from the quota.
    pub(crate) from_quota: u32,
    /// Units held or booked on the channel, from its quota or the open part.
    pub(crate) taken: u32,
}

/// The quotas of one slot. Exists from the first `set_channel_quota` of the slot on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChannelSlot {
    /// The slot's whole capacity (the word holds [`word_capacity`](Self::word_capacity)).
    pub(crate) capacity: u32,
    /// Closed (`close_slot`): the word's capacity is 0 whatever the quotas.
    pub(crate) closed: bool,
    /// At most 256 entries (one per channel), sorted by channel.
    pub(crate) channels: Vec<(Channel, ChannelCount)>,
}

impl ChannelSlot {
    /// Quota units not used yet: `Σ max(q_c − f_c, 0)`.
    pub(crate) fn unused(&self) -> u32 {
        self.channels
            .iter()
            .map(|(_, c)| c.quota.saturating_sub(c.from_quota))
            .sum()
    }

    /// The sum of the quotas still kept.
    pub(crate) fn quotas(&self) -> u64 {
        self.channels.iter().map(|(_, c)| u64::from(c.quota)).sum()
    }

    /// What the slot word's capacity field holds: the open part plus every unit taken.
    pub(crate) fn word_capacity(&self) -> u32 {
        if self.closed {
            0
        } else {
            self.capacity.saturating_sub(self.unused())
        }
    }

    /// The counts of `channel`, created at zero if new.
    pub(crate) fn count_mut(&mut self, channel: Channel) -> &mut ChannelCount {
        let i = match self.channels.binary_search_by_key(&channel, |(c, _)| *c) {
            Ok(i) => i,
            Err(i) => {
                self.channels.insert(i, (channel, ChannelCount::default()));
                i
            }
        };
        &mut self.channels[i].1
    }

    /// The counts of `channel`, if it ever had a quota or took a unit here.
    pub(crate) fn count(&self, channel: Channel) -> Option<ChannelCount> {
        self.channels
            .binary_search_by_key(&channel, |(c, _)| *c)
            .ok()
            .map(|i| self.channels[i].1)
    }

    /// The quotas with a change of `channel`'s to `quota`: their sum, to check against the
    /// capacity.
    pub(crate) fn quotas_with(&self, channel: Channel, quota: u32) -> u64 {
        let old = self.count(channel).map_or(0, |c| c.quota);
        self.quotas() - u64::from(old) + u64::from(quota)
    }
}

/// One channel's view of a slot: its quota and what it has taken (see
/// [`SlotBook::channel_quotas`](crate::SlotBook::channel_quotas)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ChannelState {
    /// The channel.
    pub channel: Channel,
    /// Units kept for it (0 once the slot's quotas were opened).
    pub quota: u32,
    /// Units it holds or booked from its quota.
    pub from_quota: u32,
    /// Units it holds or booked in all, from its quota or from the open part.
    pub taken: u32,
}

/// A slot's quotas as one snapshot (see
/// [`SlotBook::channel_quotas`](crate::SlotBook::channel_quotas)).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SlotQuotas {
    /// The slot's whole capacity: [`SlotState::capacity`](crate::SlotState::capacity) shows
    /// the open part plus the units taken, which is this minus the quota units still unused.
    pub capacity: u32,
    /// Every channel that has a quota here or took a unit here, by channel number.
    pub channels: Vec<ChannelState>,
}

impl ChannelSlot {
    pub(crate) fn public(&self) -> SlotQuotas {
        SlotQuotas {
            capacity: self.capacity,
            channels: self
                .channels
                .iter()
                .map(|&(channel, c)| ChannelState {
                    channel,
                    quota: c.quota,
                    from_quota: c.from_quota,
                    taken: c.taken,
                })
                .collect(),
        }
    }
}

/// The quota slots of one 512-slot chunk, by offset in the chunk. Empty (no allocation) for a
/// chunk where no quota was ever set.
pub(crate) type QuotaTable = std::collections::BTreeMap<SlotIndex, ChannelSlot>;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_through_their_bits_and_junk_is_refused() {
        for part in [
            Part::OPEN,
            Part::on(Channel(0), false),
            Part::on(Channel(0), true),
            Part::on(Channel(255), true),
            Part::on(Channel(7), false),
        ] {
            assert!(part.bits() < 1 << PART_BITS);
            assert_eq!(Part::from_bits(part.bits()), Some(part));
        }
        assert_eq!(Part::on(Channel(9), true).channel(), Some(Channel(9)));
        assert_eq!(Part::OPEN.channel(), None);
        assert_eq!(Part::from_bits(FROM_QUOTA.into()), None);
        assert_eq!(Part::from_bits(5), None);
        assert_eq!(Part::from_bits(1 << PART_BITS), None);
    }

    #[test]
    fn the_word_capacity_is_the_capacity_less_unused_quota() {
        let mut s = ChannelSlot {
            capacity: 10,
            ..ChannelSlot::default()
        };
        s.count_mut(Channel(2)).quota = 3;
        s.count_mut(Channel(1)).quota = 2;
        assert_eq!((s.unused(), s.word_capacity(), s.quotas()), (5, 5, 5));
        s.count_mut(Channel(2)).from_quota = 4; // over its quota after a lowering
        assert_eq!((s.unused(), s.word_capacity()), (2, 8));
        assert_eq!(s.channels[0].0, Channel(1), "sorted by channel");
        assert_eq!(s.quotas_with(Channel(1), 7), 10);
        s.closed = true;
        assert_eq!(s.word_capacity(), 0);
    }
}
