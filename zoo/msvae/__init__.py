"""MSVAE (Cai, Gao & Ji 2017): a VAE (stage 1) whose blurry output a refiner network (stage 2) sharpens, trained on its own l1 loss."""
