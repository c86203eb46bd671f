//! Integration tests: the real `ae-tch` binary on the real embedded data (data/mnist).

mod bad_input;
mod colour;
mod compat;
mod dist;
mod ecosystem;
mod fetch;
mod finetune;
mod guide;
mod images;
mod plots;
mod quality;
mod resume;
mod series;
mod speech;
mod tensorboard;
mod threads;
mod torchscript;
mod training;
mod util;
mod vectors;
mod zoo;
