//! The models a history can be checked against, one small file each. Adding one is a new file here
//! plus one line in [`crate::linearizable::MODELS`] and in `checker_for`.

pub mod bank;
pub mod cas_register;
pub mod counter;
pub mod multi_register;
pub mod mutex;
pub mod register;
pub mod set;

pub use bank::Bank;
pub use cas_register::CasRegister;
pub use counter::Counter;
pub use multi_register::MultiRegister;
pub use mutex::Mutex;
pub use register::Register;
pub use set::Set;
