"""edge-fer: facial-emotion recognition on the edge.

The runtime package. It depends only on the light runtime stack (ai-edge-litert,
OpenCV, NumPy, paho-mqtt, prometheus-client, pydantic) and never imports
TensorFlow, so it runs on a Raspberry Pi or a Jetson.
"""

__version__ = "0.1.0"
