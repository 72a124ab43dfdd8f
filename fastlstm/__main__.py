"""`python -m fastlstm`: the demo (fastlstm/demo.py);
`python -m fastlstm bench ...`: the benchmark (fastlstm/bench/);
`python -m fastlstm nvrtc-check ...`: every CUDA kernel through NVRTC
(fastlstm/nvrtc_check.py)."""
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "bench":
        from fastlstm.bench import main as bench_main
        return bench_main(argv[1:])
    if argv and argv[0] == "nvrtc-check":
        from fastlstm.nvrtc_check import main as check_main
        sys.exit(check_main(argv[1:]))
    from fastlstm.demo import main as demo_main
    return demo_main(argv)


if __name__ == "__main__":
    main()
