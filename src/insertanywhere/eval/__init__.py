"""Evaluation: CLIP-I / DINO-I (``subject``), VBench-style quality (``vbench``), DAVIS J/F (``masks``),
PSNR/SSIM/warping error against GT (``gt_metrics``), trajectory errors (``trajectory``), one output folder
(``evaluate.evaluate_output``, ``insertanywhere eval``) and the benchmark over cases (``runner.run_bench``,
``insertanywhere bench``; ``build_cases``, ``report``, ``plots``). Formulas: docs/evaluation.md.
"""
