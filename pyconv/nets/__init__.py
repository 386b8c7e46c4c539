"""TF-Slim's model zoo on NumPy arrays: ``tf_slim.nets`` module by module, plus
MobileNet v1 and ``nets_factory`` from tensorflow/models (research/slim)."""
