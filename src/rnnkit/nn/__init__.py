"""Building blocks: recurrent layers and dropout variants."""
