//! The bytes on disk: journal records, segment headers, checkpoints and the directory's meta file.
//!
//! Every integer is little-endian. Every structure carries a CRC32C (Castagnoli) checksum, so a
//! damaged byte is found, never believed.
//!
//! A record is `len: u32 | crc: u32 | lsn: u64 | kind: u8 | payload`, where `len` counts the kind
//! byte and the payload, and `crc` covers `len`, `lsn`, `kind` and the payload. Only three record
//! lengths exist, so a length field read from garbage is rejected before anything is trusted.
//! The log sequence number (`lsn`) grows by exactly one per record across all segments, so a
//! record out of place (a stale block, a copy from another file) is caught too.

/// The version of the journal segment and checkpoint formats that this build writes. Bumped on
/// any change of layout or meaning. Version 4 added channel quotas (the records
/// [`Change::Quota`] and [`Change::QuotasOpened`], checkpoint entries marked [`QUOTA`], and a
/// booking's part in the bits of its slot above the 22 of the index); version 3 added [`CLOSED`].
/// Files of versions 2 and 3 (which hold none of these) are read as they are.
pub(crate) const FORMAT_VERSION: u32 = 4;
/// Set in the capacity of a checkpoint entry that is a channel quota of the slot, not its
/// capacity: `QUOTA | channel << 21 | quota`.
pub(crate) const QUOTA: u32 = 1 << 30;
/// Where a quota entry keeps its channel.
pub(crate) const QUOTA_CHANNEL_SHIFT: u32 = 21;

/// The oldest segment and checkpoint format version this build reads.
const OLDEST_READABLE: u32 = 2;
/// Set in the capacity of a capacity record or checkpoint entry: the slot was closed
/// (`close_slot`), with capacity 0. Capacities are at most 2^21 − 1, so the bit is free.
pub(crate) const CLOSED: u32 = 1 << 31;
/// The version of the meta file's layout. Version 2 (32 bytes: the shard layout only) is still
/// read, as "nothing known about the journal"; it is rewritten as version 3 on open.
pub(crate) const META_VERSION: u32 = 3;
/// What a header of another format version decodes to; the book reports it as
/// `OpenError::Incompatible`, not as damage.
pub(crate) const UNKNOWN_VERSION: &str =
    "written by another format version of surgegate, which this build cannot read";

const SEGMENT_MAGIC: [u8; 8] = *b"SGJOURNL";
const CHECKPOINT_MAGIC: [u8; 8] = *b"SGCHECKP";
const META_MAGIC: [u8; 8] = *b"SGBOOKMT";

/// Bytes before a record's kind byte: `len`, `crc`, `lsn`.
pub(crate) const RECORD_HEADER: usize = 16;
/// The longest record: a booking.
pub(crate) const MAX_RECORD: usize = RECORD_HEADER + 1 + BOOKED_PAYLOAD;
/// Bytes of a segment header.
pub(crate) const SEGMENT_HEADER: usize = 32;
/// Bytes of the meta file.
pub(crate) const META_LEN: usize = 48;
/// Bytes of a version-2 meta file.
const META_V2_LEN: usize = 32;
/// Bytes of a checkpoint header.
pub(crate) const CHECKPOINT_HEADER: usize = 48;
/// Bytes of one capacity entry in a checkpoint: branch, slot, capacity.
pub(crate) const CAPACITY_ENTRY: usize = 12;
/// Bytes of one booking entry in a checkpoint: token, branch, slot, applicant.
pub(crate) const BOOKING_ENTRY: usize = 32;

const KIND_CAPACITY: u8 = 1;
const KIND_BOOKED: u8 = 2;
const KIND_CANCELLED: u8 = 3;
const KIND_QUOTA: u8 = 4;
const KIND_QUOTAS_OPENED: u8 = 5;
const CAPACITY_PAYLOAD: usize = 12;
const BOOKED_PAYLOAD: usize = 32;
const CANCELLED_PAYLOAD: usize = 16;

/// One durable change of a book: what the journal stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// `set_capacity(branch, slot, capacity)` returned `Ok`, or `close_slot(branch, slot)`
    /// (`capacity == CLOSED`).
    Capacity {
        branch: u32,
        slot: u32,
        capacity: u32,
    },
    /// `confirm` turned the hold `token` into a booking.
    Booked {
        token: u128,
        branch: u32,
        slot: u32,
        applicant: u64,
    },
    /// `release` cancelled the booking `token`.
    Cancelled { token: u128 },
    /// `set_channel_quota(branch, slot, Channel(channel), quota)` returned `Ok`.
    Quota {
        branch: u32,
        slot: u32,
        channel: u8,
        quota: u32,
    },
    /// `open_channel_quotas(branch, slot)` set every quota of the slot to 0.
    QuotasOpened { branch: u32, slot: u32 },
}

impl Change {
    fn kind(&self) -> u8 {
        match self {
            Change::Capacity { .. } => KIND_CAPACITY,
            Change::Booked { .. } => KIND_BOOKED,
            Change::Cancelled { .. } => KIND_CANCELLED,
            Change::Quota { .. } => KIND_QUOTA,
            Change::QuotasOpened { .. } => KIND_QUOTAS_OPENED,
        }
    }

    /// Bytes of this change's record.
    pub(crate) fn encoded_len(&self) -> usize {
        RECORD_HEADER
            + 1
            + match self {
                Change::Capacity { .. } | Change::Quota { .. } | Change::QuotasOpened { .. } => {
                    CAPACITY_PAYLOAD
                }
                Change::Booked { .. } => BOOKED_PAYLOAD,
                Change::Cancelled { .. } => CANCELLED_PAYLOAD,
            }
    }
}

/// Appends the record of `change` with sequence number `lsn` to `out`.
pub(crate) fn encode_record(out: &mut Vec<u8>, lsn: u64, change: &Change) {
    let start = out.len();
    let body_len = (change.encoded_len() - RECORD_HEADER) as u32;
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // the checksum, filled in below
    out.extend_from_slice(&lsn.to_le_bytes());
    out.push(change.kind());
    match *change {
        Change::Capacity {
            branch,
            slot,
            capacity,
        } => {
            out.extend_from_slice(&branch.to_le_bytes());
            out.extend_from_slice(&slot.to_le_bytes());
            out.extend_from_slice(&capacity.to_le_bytes());
        }
        Change::Booked {
            token,
            branch,
            slot,
            applicant,
        } => {
            out.extend_from_slice(&token.to_le_bytes());
            out.extend_from_slice(&branch.to_le_bytes());
            out.extend_from_slice(&slot.to_le_bytes());
            out.extend_from_slice(&applicant.to_le_bytes());
        }
        Change::Cancelled { token } => out.extend_from_slice(&token.to_le_bytes()),
        Change::Quota {
            branch,
            slot,
            channel,
            quota,
        } => {
            out.extend_from_slice(&branch.to_le_bytes());
            out.extend_from_slice(&slot.to_le_bytes());
            let packed = u32::from(channel) << QUOTA_CHANNEL_SHIFT | quota;
            out.extend_from_slice(&packed.to_le_bytes());
        }
        Change::QuotasOpened { branch, slot } => {
            out.extend_from_slice(&branch.to_le_bytes());
            out.extend_from_slice(&slot.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
        }
    }
    let crc = record_crc(&out[start..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len() - start, change.encoded_len());
}

/// The checksum of a whole record (its own checksum field is skipped).
fn record_crc(record: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&record[0..4]);
    crc32c::crc32c_append(crc, &record[8..])
}

/// What the bytes at the start of a buffer hold.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A whole, intact record of `len` bytes.
    Record {
        lsn: u64,
        change: Change,
        len: usize,
    },
    /// The buffer ends inside a record that looks well formed so far.
    Cut,
    /// Not a valid record.
    Bad(&'static str),
}

/// Decodes the record at the start of `buf`.
pub(crate) fn decode_record(buf: &[u8]) -> Decoded {
    if buf.len() < 4 {
        return Decoded::Cut;
    }
    let body_len = u32_at(buf, 0) as usize;
    let payload_len = match body_len.checked_sub(1) {
        Some(CAPACITY_PAYLOAD) | Some(BOOKED_PAYLOAD) | Some(CANCELLED_PAYLOAD) => body_len - 1,
        _ => return Decoded::Bad("record length is not one a record can have"),
    };
    let len = RECORD_HEADER + body_len;
    if buf.len() < len {
        return Decoded::Cut;
    }
    let record = &buf[..len];
    if u32_at(record, 4) != record_crc(record) {
        return Decoded::Bad("record checksum mismatch");
    }
    let lsn = u64_at(record, 8);
    let p = &record[RECORD_HEADER + 1..];
    let change = match (record[RECORD_HEADER], payload_len) {
        (KIND_CAPACITY, CAPACITY_PAYLOAD) => Change::Capacity {
            branch: u32_at(p, 0),
            slot: u32_at(p, 4),
            capacity: u32_at(p, 8),
        },
        (KIND_BOOKED, BOOKED_PAYLOAD) => Change::Booked {
            token: u128_at(p, 0),
            branch: u32_at(p, 16),
            slot: u32_at(p, 20),
            applicant: u64_at(p, 24),
        },
        (KIND_CANCELLED, CANCELLED_PAYLOAD) => Change::Cancelled {
            token: u128_at(p, 0),
        },
        (KIND_QUOTA, CAPACITY_PAYLOAD) => {
            let packed = u32_at(p, 8);
            if packed >> (QUOTA_CHANNEL_SHIFT + 8) != 0 {
                return Decoded::Bad("quota record with bits set above its channel");
            }
            Change::Quota {
                branch: u32_at(p, 0),
                slot: u32_at(p, 4),
                channel: (packed >> QUOTA_CHANNEL_SHIFT) as u8,
                quota: packed & ((1 << QUOTA_CHANNEL_SHIFT) - 1),
            }
        }
        (KIND_QUOTAS_OPENED, CAPACITY_PAYLOAD) if u32_at(p, 8) == 0 => Change::QuotasOpened {
            branch: u32_at(p, 0),
            slot: u32_at(p, 4),
        },
        _ => return Decoded::Bad("record kind does not match its length"),
    };
    Decoded::Record { lsn, change, len }
}

/// The header at the start of every journal segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// The segment's number, also in its file name.
    pub(crate) seq: u64,
    /// The sequence number of the segment's first record.
    pub(crate) first_lsn: u64,
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER] {
        let mut b = [0u8; SEGMENT_HEADER];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[16..24].copy_from_slice(&self.seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_lsn.to_le_bytes());
        let crc = skip_crc_field(&b);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, &'static str> {
        let b = b
            .get(..SEGMENT_HEADER)
            .ok_or("segment header is cut short")?;
        check_magic_version(b, &SEGMENT_MAGIC, "journal segment")?;
        if u32_at(b, 12) != skip_crc_field(b) {
            return Err("segment header checksum mismatch");
        }
        Ok(Self {
            seq: u64_at(b, 16),
            first_lsn: u64_at(b, 24),
        })
    }
}

/// What a directory is fixed to when it is created (the shard layout that tokens encode), and
/// what the book knows must exist in it, so that lost files and records are caught at open.
///
/// Layout (version 3): `magic | version: u32 | crc: u32 | shards: u32 | max_batch_records: u32 |
/// shard_seed: u64 | checkpoint: u64 | min_next_lsn: u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Lock shards of the book (a token's low bits name one).
    pub(crate) shards: u32,
    /// Key of the applicant-to-shard mix.
    pub(crate) shard_seed: u64,
    /// The largest batch (in records) of the session that wrote the newest segment's tail, so a
    /// torn tail longer than one batch is damage. 0 when unknown (a version-2 file).
    pub(crate) max_batch_records: u32,
    /// The newest checkpoint written (0: none yet): it, or a newer one, must exist.
    pub(crate) checkpoint: u64,
    /// The journal reaches at least the record before this one: recorded at every open,
    /// checkpoint and clean close, so records lost before that point are caught.
    pub(crate) min_next_lsn: u64,
}

impl Meta {
    pub(crate) fn encode(&self) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        b[0..8].copy_from_slice(&META_MAGIC);
        b[8..12].copy_from_slice(&META_VERSION.to_le_bytes());
        b[16..20].copy_from_slice(&self.shards.to_le_bytes());
        b[20..24].copy_from_slice(&self.max_batch_records.to_le_bytes());
        b[24..32].copy_from_slice(&self.shard_seed.to_le_bytes());
        b[32..40].copy_from_slice(&self.checkpoint.to_le_bytes());
        b[40..48].copy_from_slice(&self.min_next_lsn.to_le_bytes());
        let crc = skip_crc_field(&b);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, &'static str> {
        if b.len() < 12 || b[0..8] != META_MAGIC {
            return Err("not a surgegate meta file (wrong magic bytes)");
        }
        let len = match u32_at(b, 8) {
            2 => META_V2_LEN,
            META_VERSION => META_LEN,
            _ => return Err(UNKNOWN_VERSION),
        };
        if b.len() != len {
            return Err("meta file has the wrong length");
        }
        if u32_at(b, 12) != skip_crc_field(b) {
            return Err("meta file checksum mismatch");
        }
        let shards = u32_at(b, 16);
        if !(1..=256).contains(&shards) || !shards.is_power_of_two() {
            return Err("meta file names an impossible shard count");
        }
        let v3 = len == META_LEN;
        Ok(Self {
            shards,
            shard_seed: u64_at(b, 24),
            max_batch_records: if v3 { u32_at(b, 20) } else { 0 },
            checkpoint: if v3 { u64_at(b, 32) } else { 0 },
            min_next_lsn: if v3 { u64_at(b, 40) } else { 0 },
        })
    }
}

/// The state of a book at one point of its journal: every open slot's capacity and every booking.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// The journal segment that continues from this state.
    pub(crate) seq: u64,
    /// The sequence number of that segment's first record.
    pub(crate) next_lsn: u64,
    /// `(branch, slot, capacity)` of every open slot.
    pub(crate) capacities: Vec<(u32, u32, u32)>,
    /// `(token, branch, slot, applicant)` of every booking.
    pub(crate) bookings: Vec<(u128, u32, u32, u64)>,
}

impl Checkpoint {
    /// The whole file: header, capacities, bookings, then the checksum of everything before it.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let len = CHECKPOINT_HEADER
            + self.capacities.len() * CAPACITY_ENTRY
            + self.bookings.len() * BOOKING_ENTRY
            + 4;
        let mut b = Vec::with_capacity(len);
        b.extend_from_slice(&CHECKPOINT_MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&self.seq.to_le_bytes());
        b.extend_from_slice(&self.next_lsn.to_le_bytes());
        b.extend_from_slice(&(self.capacities.len() as u64).to_le_bytes());
        b.extend_from_slice(&(self.bookings.len() as u64).to_le_bytes());
        let crc = skip_crc_field(&b);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        for &(branch, slot, capacity) in &self.capacities {
            b.extend_from_slice(&branch.to_le_bytes());
            b.extend_from_slice(&slot.to_le_bytes());
            b.extend_from_slice(&capacity.to_le_bytes());
        }
        for &(token, branch, slot, applicant) in &self.bookings {
            b.extend_from_slice(&token.to_le_bytes());
            b.extend_from_slice(&branch.to_le_bytes());
            b.extend_from_slice(&slot.to_le_bytes());
            b.extend_from_slice(&applicant.to_le_bytes());
        }
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(b.len(), len);
        b
    }

    /// Decodes a whole checkpoint file. On failure: the byte offset where it went wrong and why.
    pub(crate) fn decode(b: &[u8]) -> Result<Self, (u64, &'static str)> {
        let header = b
            .get(..CHECKPOINT_HEADER)
            .ok_or((0, "checkpoint header is cut short"))?;
        check_magic_version(header, &CHECKPOINT_MAGIC, "checkpoint").map_err(|e| (0, e))?;
        if u32_at(header, 12) != skip_crc_field(header) {
            return Err((0, "checkpoint header checksum mismatch"));
        }
        let caps = u64_at(header, 32);
        let books = u64_at(header, 40);
        let expected = caps
            .checked_mul(CAPACITY_ENTRY as u64)
            .and_then(|c| c.checked_add(books.checked_mul(BOOKING_ENTRY as u64)?))
            .and_then(|n| n.checked_add(CHECKPOINT_HEADER as u64 + 4));
        if expected != Some(b.len() as u64) {
            return Err((
                b.len() as u64,
                "checkpoint length does not match its entry counts",
            ));
        }
        let body_end = b.len() - 4;
        if u32_at(b, body_end) != crc32c::crc32c(&b[..body_end]) {
            return Err((body_end as u64, "checkpoint checksum mismatch"));
        }
        let mut at = CHECKPOINT_HEADER;
        let capacities = (0..caps)
            .map(|_| {
                let e = &b[at..at + CAPACITY_ENTRY];
                at += CAPACITY_ENTRY;
                (u32_at(e, 0), u32_at(e, 4), u32_at(e, 8))
            })
            .collect();
        let bookings = (0..books)
            .map(|_| {
                let e = &b[at..at + BOOKING_ENTRY];
                at += BOOKING_ENTRY;
                (u128_at(e, 0), u32_at(e, 16), u32_at(e, 20), u64_at(e, 24))
            })
            .collect();
        Ok(Self {
            seq: u64_at(header, 16),
            next_lsn: u64_at(header, 24),
            capacities,
            bookings,
        })
    }
}

fn check_magic_version(b: &[u8], magic: &[u8; 8], what: &'static str) -> Result<(), &'static str> {
    if &b[0..8] != magic {
        return Err(match what {
            "journal segment" => "not a surgegate journal segment (wrong magic bytes)",
            "checkpoint" => "not a surgegate checkpoint (wrong magic bytes)",
            _ => "not a surgegate meta file (wrong magic bytes)",
        });
    }
    if !(OLDEST_READABLE..=FORMAT_VERSION).contains(&u32_at(b, 8)) {
        return Err(UNKNOWN_VERSION);
    }
    Ok(())
}

/// CRC32C of a header whose bytes 12..16 hold the checksum itself.
fn skip_crc_field(b: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&b[..12]), &b[16..])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u128_at(b: &[u8], at: usize) -> u128 {
    u128::from_le_bytes(b[at..at + 16].try_into().expect("16 bytes"))
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
