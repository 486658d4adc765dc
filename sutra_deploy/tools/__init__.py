"""Every way out of the process: command lines (sh), the Docker engine (docker SDK), HTTP
(requests), the registry API, compose, kubectl, files and waiting. Above core/ only."""
