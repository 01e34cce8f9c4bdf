//! cryptmed-prep (being written).
