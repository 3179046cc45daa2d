package io.hintgrpo.engine.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.hintgrpo.engine.BadInputException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Reading a JSON file given by a user: a missing, unreadable or malformed file is one clear error naming it. */
public final class JsonFiles {
    private static final ObjectMapper JSON = new ObjectMapper();

    private JsonFiles() {}

    public static JsonNode read(Path file) {
        String where = file.toString();
        try {
            return JSON.readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new BadInputException(where, "file not found");
        } catch (JsonProcessingException e) {
            throw new BadInputException(where, "not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new BadInputException(where, "cannot read: " + e.getMessage());
        }
    }
}
