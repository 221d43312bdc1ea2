// compiled.cpp: the one translation unit of piano::compiled, the optional compiled mode
// (docs/building.md). With PIANO_COMPILED_INSTANTIATIONS, the PIANO_INSTANTIATE list at
// the end of each header becomes explicit instantiation definitions: the float models,
// layers, losses, optimizers, checkpoints and the trainer, compiled here once. Programs
// that link piano::compiled get PIANO_COMPILED, which turns the same lists into extern
// template declarations (piano/core/compiled.hpp).
#define PIANO_COMPILED_INSTANTIATIONS

// Checkpoints and the trainer need cereal; piano::compiled is built only with it, so a
// program that links the library may include them and finds them compiled.
#if !__has_include(<cereal/cereal.hpp>)
#error "piano::compiled needs cereal (for piano/io/checkpoint.hpp and piano/train/trainer.hpp)"
#endif

#include <piano/piano.hpp>
