"""Training with WebNN itself: every step is a WebNN graph (autodiff, losses, optimizers)."""

from .autodiff import GradCall, grad
from .embeddings import EfficientNetLite0Features, EmbeddingCache, FeatureExtractor, OnnxFeatures
from .image_folder import DatasetError, ImageFolder, UnreadableImagesError, load_image_folder
from .losses import mean_squared_error, one_hot, softmax_cross_entropy
from .optimizers import SGD, Adam, AdamW, Optimizer
from .parameter_file import read_parameters, write_parameters
from .trainer import Trainer
from .transfer import TransferClassifier, classify_with_head, load_classifier, train_classifier

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "DatasetError",
    "EfficientNetLite0Features",
    "EmbeddingCache",
    "FeatureExtractor",
    "GradCall",
    "ImageFolder",
    "OnnxFeatures",
    "Optimizer",
    "Trainer",
    "TransferClassifier",
    "UnreadableImagesError",
    "classify_with_head",
    "grad",
    "load_classifier",
    "load_image_folder",
    "mean_squared_error",
    "one_hot",
    "read_parameters",
    "softmax_cross_entropy",
    "train_classifier",
    "write_parameters",
]
