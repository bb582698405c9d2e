//! Realistic buyer traffic for the demo (filled in later).
