//! Deploying: format-preserving edits of charts, values, manifests and
//! `.env` files (pure: `chart`), and planning, verifying and applying them in
//! a deploy checkout (`edits`); what a deploy needs and the checks on it
//! (`plan`); `chart bump`/`chart apply` in a checkout (`apply`); the deploy
//! as a commit and pull request (`gitops`).

pub mod apply;
pub mod chart;
pub mod edits;
pub mod gitops;
pub mod plan;
