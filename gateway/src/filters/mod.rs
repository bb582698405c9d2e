//! Screening stages: blacklist, privacy masking, outbound compliance (being written).
