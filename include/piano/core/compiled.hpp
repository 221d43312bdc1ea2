// piano/core/compiled.hpp: the switch behind the optional compiled mode (docs/building.md).
//
// Header-only, every program instantiates the float models, layers, optimizers and the
// trainer it uses, which is most of its compile time. The library target piano::compiled
// instantiates them once instead. Each header that defines such a template ends with the
// list of its float instantiations,
//
//     PIANO_INSTANTIATE(class Linear<float>);
//     PIANO_INSTANTIATE(Tensor<float> matmul<float>(const Tensor<float>&, const Tensor<float>&, bool, bool));
//
// which expands, depending on what the build defines, to
//   nothing defined (header-only, the default)   nothing
//   PIANO_COMPILED (linking piano::compiled)      extern template ...;  the program
//       instantiates none of these and uses the library's copies
//   PIANO_COMPILED_INSTANTIATIONS (src/compiled.cpp only)   template ...;  the copies
// so the list is written once, beside the templates it names, and a line that names no
// template fails the library's build. What the declarations stop: every listed function
// template (the ops, the losses, the trainer, ...) and the virtual members of the listed
// classes, which a program reaches through the library's vtables. Members defined inside a
// class body are inline, so a program may still instantiate those it calls directly, to
// inline them; what they call from the lists it does not compile again.
#pragma once

// piano::compiled's copies run Eigen's own products; a program built through piano::blas
// (EIGEN_USE_BLAS) would hold two different definitions of the same inline code.
#if defined(PIANO_COMPILED) && defined(EIGEN_USE_BLAS)
#error "piano: link piano::compiled or piano::blas, not both (the compiled library was built with Eigen's own products)"
#endif

#if defined(PIANO_COMPILED_INSTANTIATIONS)
#define PIANO_INSTANTIATE(...) template __VA_ARGS__
#elif defined(PIANO_COMPILED)
#define PIANO_INSTANTIATE(...) extern template __VA_ARGS__
#else
// A declaration that does nothing, so the `;` after each line is not an empty one.
#define PIANO_INSTANTIATE(...) static_assert(true, "")
#endif
