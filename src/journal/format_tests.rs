//! The on-disk formats' round trips, and damage they must catch.

use super::{
    CHECKPOINT_HEADER, Change, Checkpoint, Decoded, MAX_RECORD, META_MAGIC, META_V2_LEN, Meta,
    SegmentHeader, UNKNOWN_VERSION, decode_record, encode_record, skip_crc_field,
};

fn samples() -> [Change; 5] {
    [
        Change::Quota {
            branch: 7,
            slot: 12,
            channel: 255,
            quota: (1 << 21) - 1,
        },
        Change::QuotasOpened { branch: 7, slot: 1 },
        Change::Capacity {
            branch: 7,
            slot: 12,
            capacity: 40,
        },
        Change::Booked {
            token: 0x0011_2233_4455_6677_8899_aabb_ccdd_eeff,
            branch: u32::MAX,
            slot: 3,
            applicant: u64::MAX - 1,
        },
        Change::Cancelled { token: 5 },
    ]
}

#[test]
fn records_round_trip_and_every_cut_is_seen() {
    for (lsn, change) in samples().iter().enumerate() {
        let mut buf = Vec::new();
        encode_record(&mut buf, lsn as u64 + 1, change);
        assert_eq!(buf.len(), change.encoded_len());
        assert!(buf.len() <= MAX_RECORD);
        assert_eq!(
            decode_record(&buf),
            Decoded::Record {
                lsn: lsn as u64 + 1,
                change: *change,
                len: buf.len()
            }
        );
        for cut in 0..buf.len() {
            assert_eq!(decode_record(&buf[..cut]), Decoded::Cut, "cut at {cut}");
        }
    }
}

#[test]
fn every_single_bit_flip_is_caught() {
    for change in samples() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 9, &change);
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            match decode_record(&bad) {
                Decoded::Record { .. } => panic!("flip of bit {bit} of {change:?} accepted"),
                // A flipped length bit may make the record look longer than the buffer.
                Decoded::Cut | Decoded::Bad(_) => {}
            }
        }
    }
}

#[test]
fn zeros_are_not_a_record() {
    assert!(matches!(decode_record(&[0; 64]), Decoded::Bad(_)));
}

#[test]
fn headers_and_meta_round_trip_and_reject_damage() {
    let h = SegmentHeader {
        seq: 3,
        first_lsn: 1_000,
    };
    let mut b = h.encode();
    assert_eq!(SegmentHeader::decode(&b), Ok(h));
    b[20] ^= 1;
    assert!(SegmentHeader::decode(&b).is_err());
    assert!(SegmentHeader::decode(&[0; 10]).is_err());

    let m = Meta {
        shards: 64,
        shard_seed: 0xdead_beef,
        max_batch_records: 4096,
        checkpoint: 7,
        min_next_lsn: 1_234,
    };
    let mut b = m.encode();
    assert_eq!(Meta::decode(&b), Ok(m));
    for at in [20, 30, 35, 47] {
        b[at] ^= 0x80;
        assert!(Meta::decode(&b).is_err());
        b[at] ^= 0x80;
    }
    b[8] = 9;
    assert_eq!(Meta::decode(&b), Err(UNKNOWN_VERSION));
}

#[test]
fn a_version_2_meta_file_is_read_as_knowing_nothing_of_the_journal() {
    let mut b = [0u8; META_V2_LEN];
    b[0..8].copy_from_slice(&META_MAGIC);
    b[8..12].copy_from_slice(&2u32.to_le_bytes());
    b[16..20].copy_from_slice(&8u32.to_le_bytes());
    b[24..32].copy_from_slice(&99u64.to_le_bytes());
    let crc = skip_crc_field(&b);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    let m = Meta::decode(&b).unwrap();
    assert_eq!((m.shards, m.shard_seed), (8, 99));
    assert_eq!(
        (m.max_batch_records, m.checkpoint, m.min_next_lsn),
        (0, 0, 0)
    );
}

#[test]
fn checkpoints_round_trip_and_name_the_damage() {
    let cp = Checkpoint {
        seq: 4,
        next_lsn: 77,
        capacities: vec![(1, 2, 3), (4, 5, 6)],
        bookings: vec![(9, 1, 2, 3)],
    };
    let b = cp.encode();
    assert_eq!(Checkpoint::decode(&b), Ok(cp));
    let mut bad = b.clone();
    bad[CHECKPOINT_HEADER + 3] ^= 1;
    assert_eq!(
        Checkpoint::decode(&bad).unwrap_err(),
        ((b.len() - 4) as u64, "checkpoint checksum mismatch")
    );
    assert!(Checkpoint::decode(&b[..b.len() - 1]).is_err());
    let mut bad = b.clone();
    bad[0] = b'X';
    assert!(Checkpoint::decode(&bad).is_err());
}
