"""A libFuzzer target that doubles as a corpus-replay test outside fuzz builds."""

def fuzz_target(name, srcs, deps, corpus = None):
    native.cc_binary(
        name = name,
        srcs = srcs + select({
            "//fuzz:fuzzing": [],
            "//conditions:default": ["replay_main.cc"],
        }),
        deps = deps,
        testonly = True,
    )
    native.sh_test(
        name = name + "_replay",
        srcs = ["replay_test.sh"],
        args = ["$(location :%s)" % name] + (["$(locations %s)" % corpus] if corpus else []),
        data = [":" + name] + ([corpus] if corpus else []),
    )
