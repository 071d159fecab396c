"""``mvbench generate``: the caption answers of MedVidBench, written by two models from expert annotations.

The chain, over a built dataset (``mvbench build``), for every DVC, VS and RC instance still
carrying its annotation-derived draft (``generator: template``):

1. **enrich** (:mod:`.enrich`): the instance's frames with the annotated boxes and labels drawn on
   them, per-frame text with timestamps (phase, triplets, tool tracks, actions, gestures,
   procedure) and a short expert context per source (``prompts/generation/``);
2. **generate** (:mod:`.live`, :mod:`.batch`): a GPT answer and a Gemini answer
   (``*_gpt`` / ``*_gemini``), live or through the providers' batch APIs, every paid call
   journalled and cached by content so that nothing is paid twice;
3. **validate** (:mod:`.validate`): the two answers must agree (MiniLM cosine) and each must pass
   rule checks against the annotations (and, optionally, an LLM validator);
4. **assemble** (:mod:`.assemble`): accepted pairs replace the draft by two records, rejected
   ones go to ``rejects.parquet`` with their reasons, and the manifest records models, prompt
   versions, thresholds, counts and costs.

:func:`mvbench.generation.run.run_generate` is the entry point; :mod:`.estimate` prices a run
before paying for it.
"""
