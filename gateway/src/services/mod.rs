pub mod blacklist;
