"""BLIP and UnifiedQA around transformers' own classes: Grad-CAM heat maps, question-guided
captions, the Fusion-in-Decoder answer, and how much of a question the models read."""
