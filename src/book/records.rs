//! One shard's hold and booking records in a slab, addressed by bits of their token.
//!
//! Guarantees: finding a record by its token is one indexed load and one comparison, no hash
//! probe; a record takes 48 bytes and no heap allocation of its own; the entries of vacated
//! records are reused. The applicant index (a `hashbrown` table of entry numbers, keyed by the
//! applicant read from the entry, pointing at the applicant's newest record, whose records are
//! chained) is the only hashing, and only `reserve` and `release` use it.
//!
//! A token is 128 bits: bits 0..8 name the lock shard, bits 8..32 the entry in that shard's slab,
//! and the 96 bits above are CSPRNG output, compared in full on every lookup. So a shard holds at
//! most [`MAX_RECORDS`] records at once.

use hashbrown::HashTable;

use super::channel::{PART_BITS, Part};
use super::chunk::SlotRef;
use super::record::{Record, State};
use super::types::{ApplicantId, SlotIndex};

/// The most records (holds and bookings) one lock shard holds at once: 2^24.
pub(crate) const MAX_RECORDS: u32 = 1 << 24;

const NONE: u32 = u32::MAX;
const SHARD_BITS: u32 = 8;
const INDEX_BITS: u32 = 24;
/// The low 32 bits of a token route it; the rest is random.
const ROUTE_MASK: u128 = (1 << (SHARD_BITS + INDEX_BITS)) - 1;

/// The slab entry a token names.
pub(crate) fn index_of(token: u128) -> u32 {
    ((token >> SHARD_BITS) as u32) & (MAX_RECORDS - 1)
}

/// The state in the top two bits of `Entry::when`, a hold's expiry in the rest.
const STATE_SHIFT: u32 = 62;
/// The latest expiry a hold can have: about 146 years on the book's clock.
pub(crate) const MAX_EXPIRY_NS: u64 = (1 << STATE_SHIFT) - 1;

fn pack_state(state: State) -> u64 {
    match state {
        State::Held { expires_ns } => expires_ns.min(MAX_EXPIRY_NS),
        State::Confirming { expires_ns } => (1 << STATE_SHIFT) | expires_ns.min(MAX_EXPIRY_NS),
        State::Booked => 2 << STATE_SHIFT,
        State::Cancelling => 3 << STATE_SHIFT,
    }
}

fn unpack_state(when: u64) -> State {
    let expires_ns = when & MAX_EXPIRY_NS;
    match when >> STATE_SHIFT {
        0 => State::Held { expires_ns },
        1 => State::Confirming { expires_ns },
        2 => State::Booked,
        _ => State::Cancelling,
    }
}

/// One slab entry: a record, or a vacant place (`at` is `None`) in the free chain.
#[derive(Clone, Copy, Debug)]
struct Entry {
    token: [u64; 2],
    applicant: u64,
    /// `state << 62 | expires_ns`.
    when: u64,
    at: Option<SlotRef>,
    /// The slot in the low [`SLOT_BITS`] bits, the record's [`Part`] above.
    slot: SlotIndex,
    /// The applicant's next older record, or the next vacant entry; `NONE` ends either chain.
    next: u32,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 48);

/// Bits of a slot index in an entry (slots are below 2^22, `max_slots_per_branch`'s limit).
pub(crate) const SLOT_BITS: u32 = 22;
const _: () = assert!(SLOT_BITS + PART_BITS <= 32);

/// A slot and a part in one `u32`: the form entries, journal records and checkpoints keep.
pub(crate) fn pack_slot(slot: SlotIndex, part: Part) -> u32 {
    debug_assert!(slot < 1 << SLOT_BITS);
    slot | part.bits() << SLOT_BITS
}

/// The slot and part of a packed slot; `None` if the part bits name no part.
pub(crate) fn unpack_slot(packed: u32) -> Option<(SlotIndex, Part)> {
    let part = Part::from_bits(packed >> SLOT_BITS)?;
    Some((packed & ((1 << SLOT_BITS) - 1), part))
}

fn split(token: u128) -> [u64; 2] {
    [token as u64, (token >> 64) as u64]
}

fn join(t: [u64; 2]) -> u128 {
    u128::from(t[0]) | (u128::from(t[1]) << 64)
}

impl Entry {
    fn vacant(next: u32) -> Self {
        Self {
            token: [0; 2],
            applicant: 0,
            when: 0,
            at: None,
            slot: 0,
            next,
        }
    }

    fn record(&self, at: SlotRef) -> Record {
        // Entries are written from records only, so the part bits are always a part's.
        let (slot, part) = unpack_slot(self.slot).unwrap_or((self.slot, Part::OPEN));
        Record {
            branch: at.branch(),
            slot,
            part,
            applicant: ApplicantId(self.applicant),
            state: unpack_state(self.when),
            at,
        }
    }
}

/// Why a record could not be placed where its token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PlaceError {
    /// The token's entry is past [`MAX_RECORDS`] or holds another record.
    Taken,
}

/// The records of one shard.
#[derive(Debug)]
pub(crate) struct Records {
    entries: Vec<Entry>,
    /// Head of the chain of vacant entries.
    free: u32,
    len: usize,
    /// Applicant -> its newest record's entry (the key is read from the entry).
    applicants: HashTable<u32>,
    hasher: ahash::RandomState,
}

impl Records {
    pub(crate) fn new(hasher: ahash::RandomState) -> Self {
        Self {
            entries: Vec::new(),
            free: NONE,
            len: 0,
            applicants: HashTable::new(),
            hasher,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn entry_of(&self, token: u128) -> Option<u32> {
        let i = index_of(token);
        let e = self.entries.get(i as usize)?;
        (e.at.is_some() && e.token == split(token)).then_some(i)
    }

    /// The record of `token`.
    #[inline]
    pub(crate) fn get(&self, token: u128) -> Option<Record> {
        let e = &self.entries[self.entry_of(token)? as usize];
        e.at.map(|at| e.record(at))
    }

    /// Changes the state of `token`'s record; false if there is none.
    pub(crate) fn set_state(&mut self, token: u128, state: State) -> bool {
        let Some(i) = self.entry_of(token) else {
            return false;
        };
        self.entries[i as usize].when = pack_state(state);
        true
    }

    /// The record in entry `index`, with its token, if the entry holds one.
    pub(crate) fn at_index(&self, index: u32) -> Option<(u128, Record)> {
        let e = self.entries.get(index as usize)?;
        e.at.map(|at| (join(e.token), e.record(at)))
    }

    /// A fresh token for `shard` naming a vacant entry, from 96 bits of `random`; `None` when
    /// the shard holds [`MAX_RECORDS`] records.
    pub(crate) fn new_token(&self, shard: usize, random: u128) -> Option<u128> {
        let index = if self.free != NONE {
            self.free
        } else {
            u32::try_from(self.entries.len())
                .ok()
                .filter(|&i| i < MAX_RECORDS)?
        };
        Some((random & !ROUTE_MASK) | (u128::from(index) << SHARD_BITS) | shard as u128)
    }

    /// Stores `record` under `token`, made by [`new_token`](Self::new_token) under the same
    /// lock, or read back from the journal.
    pub(crate) fn insert(&mut self, token: u128, record: &Record) -> Result<u32, PlaceError> {
        let index = index_of(token);
        self.take_vacant(index)?;
        let hash = self.hasher.hash_one(record.applicant.0);
        let newest = self.newest_mut(hash, record.applicant.0).map(|head| {
            // The applicant's chain gains a new head.
            let older = *head;
            *head = index;
            older
        });
        if newest.is_none() {
            let (entries, hasher) = (&self.entries, &self.hasher);
            self.applicants.insert_unique(hash, index, |&i| {
                hasher.hash_one(entries[i as usize].applicant)
            });
        }
        self.entries[index as usize] = Entry {
            token: split(token),
            applicant: record.applicant.0,
            when: pack_state(record.state),
            at: Some(record.at),
            slot: pack_slot(record.slot, record.part),
            next: newest.unwrap_or(NONE),
        };
        self.len += 1;
        Ok(index)
    }

    /// Makes entry `index` the caller's: the free chain's head (the common case), a new entry at
    /// the end, or (when recovery places records where their tokens say) any vacant entry.
    fn take_vacant(&mut self, index: u32) -> Result<(), PlaceError> {
        if index >= MAX_RECORDS {
            return Err(PlaceError::Taken);
        }
        if index == self.free {
            self.free = self.entries[index as usize].next;
            return Ok(());
        }
        let i = index as usize;
        while self.entries.len() <= i {
            // Entries skipped over join the free chain.
            let n = self.entries.len() as u32;
            self.entries.push(Entry::vacant(self.free));
            self.free = n;
        }
        if self.entries[i].at.is_some() {
            return Err(PlaceError::Taken);
        }
        self.unlink_vacant(index);
        Ok(())
    }

    /// Takes a vacant entry out of the middle of the free chain: O(chain length), which only
    /// recovery pays (live calls take the head).
    fn unlink_vacant(&mut self, index: u32) {
        let mut at = self.free;
        if at == index {
            self.free = self.entries[index as usize].next;
            return;
        }
        while at != NONE {
            let next = self.entries[at as usize].next;
            if next == index {
                self.entries[at as usize].next = self.entries[index as usize].next;
                return;
            }
            at = next;
        }
    }

    /// Whether `token`'s entry could take a record: within the slab's bounds and vacant.
    pub(crate) fn can_place(&self, token: u128) -> bool {
        let i = index_of(token) as usize;
        self.entries.get(i).is_none_or(|e| e.at.is_none())
    }

    /// Removes `token`'s record and returns it.
    pub(crate) fn remove(&mut self, token: u128) -> Option<Record> {
        let index = self.entry_of(token)?;
        let e = self.entries[index as usize];
        let at = e.at?;
        self.unlink_applicant(index, e);
        self.entries[index as usize] = Entry::vacant(self.free);
        self.free = index;
        self.len -= 1;
        Some(e.record(at))
    }

    /// Takes entry `index` (holding `e`) out of its applicant's chain.
    fn unlink_applicant(&mut self, index: u32, e: Entry) {
        let hash = self.hasher.hash_one(e.applicant);
        let entries = &self.entries;
        let Ok(head) = self
            .applicants
            .find_entry(hash, |&i| entries[i as usize].applicant == e.applicant)
        else {
            return;
        };
        let newest = *head.get();
        if newest == index {
            // The head of its chain: the index moves to the next older record, if any.
            if e.next == NONE {
                head.remove();
            } else {
                *head.into_mut() = e.next;
            }
            return;
        }
        let mut at = newest;
        while at != NONE {
            let next = self.entries[at as usize].next;
            if next == index {
                self.entries[at as usize].next = e.next;
                return;
            }
            at = next;
        }
    }

    fn newest_of_hash(&self, hash: u64, applicant: u64) -> Option<u32> {
        let entries = &self.entries;
        self.applicants
            .find(hash, |&i| entries[i as usize].applicant == applicant)
            .copied()
    }

    fn newest_mut(&mut self, hash: u64, applicant: u64) -> Option<&mut u32> {
        let entries = &self.entries;
        self.applicants
            .find_mut(hash, |&i| entries[i as usize].applicant == applicant)
    }

    /// The tokens of `applicant`'s records, newest first.
    pub(crate) fn tokens_of(&self, applicant: ApplicantId) -> impl Iterator<Item = u128> + '_ {
        let hash = self.hasher.hash_one(applicant.0);
        let mut at = self.newest_of_hash(hash, applicant.0).unwrap_or(NONE);
        std::iter::from_fn(move || {
            let e = self.entries.get(at as usize)?;
            at = e.next;
            Some(join(e.token))
        })
    }

    /// Every record with its token and entry index.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u128, u32, Record)> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.at.map(|at| (join(e.token), i as u32, e.record(at))))
    }

    /// Applicants in the index (for invariant checks).
    pub(crate) fn applicants(&self) -> usize {
        self.applicants.len()
    }

    /// Whether the free chain holds exactly the vacant entries (for invariant checks).
    pub(crate) fn check_free_chain(&self) -> Result<(), String> {
        let vacant = self.entries.iter().filter(|e| e.at.is_none()).count();
        let mut chained = 0;
        let mut at = self.free;
        while at != NONE {
            let e = self
                .entries
                .get(at as usize)
                .ok_or("free chain leaves the slab")?;
            if e.at.is_some() {
                return Err(format!("free chain names occupied entry {at}"));
            }
            chained += 1;
            if chained > vacant {
                return Err("free chain loops".into());
            }
            at = e.next;
        }
        if chained != vacant || self.len + vacant != self.entries.len() {
            return Err(format!(
                "{chained} entries chained as free, {vacant} vacant, {} records in {}",
                self.len,
                self.entries.len()
            ));
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_packing() {
        for state in [
            State::Held { expires_ns: 0 },
            State::Held {
                expires_ns: MAX_EXPIRY_NS,
            },
            State::Confirming { expires_ns: 77 },
            State::Booked,
            State::Cancelling,
        ] {
            assert_eq!(unpack_state(pack_state(state)), state);
        }
        // Expiries past the field saturate, never spill into the state bits.
        assert_eq!(
            unpack_state(pack_state(State::Held {
                expires_ns: u64::MAX
            })),
            State::Held {
                expires_ns: MAX_EXPIRY_NS
            }
        );
    }

    #[test]
    fn tokens_route_to_their_entry_and_keep_96_random_bits() {
        let records = Records::new(ahash::RandomState::with_seeds(1, 2, 3, 4));
        let token = records.new_token(5, u128::MAX).unwrap();
        assert_eq!(token as u8, 5);
        assert_eq!(index_of(token), 0);
        assert_eq!(token >> 32, u128::MAX >> 32);
    }

    #[test]
    fn entries_are_reused_chains_stay_whole_and_placement_is_checked() {
        use super::super::BranchId;
        use super::super::branches::BranchTable;
        let table = BranchTable::new(1, 512, 1);
        let (branch, ()) = table
            .with_slot(BranchId(1), table.in_range(0).unwrap(), |_| Ok::<_, ()>(()))
            .unwrap();
        let at = branch.slot_ref(0).unwrap();
        let record = |applicant: u64| Record {
            branch: BranchId(1),
            slot: 0,
            applicant: ApplicantId(applicant),
            state: State::Held { expires_ns: 9 },
            at,
            part: Part::OPEN,
        };
        let mut records = Records::new(ahash::RandomState::with_seeds(1, 2, 3, 4));
        let mut tokens = Vec::new();
        for (n, applicant) in [7u64, 7, 8, 7, 8].into_iter().enumerate() {
            let token = records.new_token(3, (n as u128 + 1) << 64).unwrap();
            records.insert(token, &record(applicant)).unwrap();
            tokens.push(token);
        }
        assert_eq!(records.tokens_of(ApplicantId(7)).count(), 3);
        // Remove one from the middle of 7's chain: the chain and the free chain stay whole.
        assert_eq!(
            records.remove(tokens[1]).map(|r| r.applicant),
            Some(ApplicantId(7))
        );
        assert!(records.get(tokens[1]).is_none());
        let sevens: Vec<u128> = records.tokens_of(ApplicantId(7)).collect();
        assert_eq!(sevens, [tokens[3], tokens[0]]);
        records.check_free_chain().unwrap();
        // The freed entry is the next one given out, under a token with other random bits.
        let reused = records.new_token(3, 99 << 64).unwrap();
        assert_eq!(index_of(reused), index_of(tokens[1]));
        assert_ne!(reused, tokens[1]);
        // A token naming an occupied entry cannot be placed; one past the end can, and the
        // entries it skips join the free chain.
        let forged = (77u128 << 64) | (u128::from(index_of(tokens[0])) << 8) | 3;
        assert!(!records.can_place(forged));
        assert_eq!(records.insert(forged, &record(9)), Err(PlaceError::Taken));
        let far = (78u128 << 64) | (40 << 8) | 3;
        assert!(records.can_place(far));
        records.insert(far, &record(9)).unwrap();
        records.check_free_chain().unwrap();
        assert_eq!(records.len(), 5);
        assert_eq!(records.applicants(), 3);
    }
}
