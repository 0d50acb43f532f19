//! Deploying: format-preserving edits of charts, values, manifests and
//! `.env` files (pure: `chart`), and planning, verifying and applying them in
//! a deploy checkout (`edits`).

pub mod chart;
pub mod edits;
