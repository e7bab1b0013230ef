"""attnstep's own Marian family (the Helsinki-NLP OPUS-MT Transformers, Junczys-Dowmunt et al. 2018), in torch
alone: the config read from a Hugging Face ``config.json`` (config.py) and the post-norm encoder–decoder with a
one-step decoder that returns every intermediate (model.py). Loading a folder is the engine's
(:mod:`attnstep.engine.marian_checkpoint`), tokenizing the text layer's (:mod:`attnstep.text.marian`)."""
