//! Tags: the rules of each stage (pure: `stage`), the version tags they read
//! (`version`), tag templates (`template`) and branch names made into image
//! tags (`branch`); applying them to a repository, creating and pushing
//! git tags (`apply`).

pub mod apply;
pub mod branch;
pub mod stage;
pub mod template;
pub mod version;
